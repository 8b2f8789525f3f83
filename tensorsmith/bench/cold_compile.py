"""Cold compile time of GPT-2 small's train step on the GPU, one backend per fresh process with empty
caches (Triton's, Inductor's and ours in a new temporary directory), so nothing compiled before is
reused: the first step's time minus a warm step's.

    python -m tensorsmith.bench.cold_compile                # inductor, then tensorsmith
    python -m tensorsmith.bench.cold_compile tensorsmith    # only these backends
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

_CHILD = "--child"


def _child(backend: str) -> None:
    import torch

    from tensorsmith.bench.gpu import GPT2_SMALL as cfg
    from tensorsmith.bench.models.nanogpt import NanoGPT, make_batch
    from tensorsmith.bench.train_step import train_step

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    model = NanoGPT(cfg).cuda()
    run = torch.compile(model, backend=backend)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    idx, targets = (t.cuda() for t in make_batch(cfg, 8, torch.Generator().manual_seed(1)))
    step = train_step(lambda: run(idx, targets), opt)

    def timed() -> float:
        torch.cuda.synchronize()
        began = time.perf_counter()
        step()
        torch.cuda.synchronize()
        return time.perf_counter() - began

    first = timed()
    warm = min(timed() for _ in range(3))
    print(f"{backend}: first step {first:.1f} s, warm step {warm * 1e3:.0f} ms, cold compile {first - warm:.1f} s",
          flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == _CHILD:
        _child(sys.argv[2])
        return
    for backend in sys.argv[1:] or ("inductor", "tensorsmith"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TRITON_CACHE_DIR=f"{cache}/triton", TORCHINDUCTOR_CACHE_DIR=f"{cache}/inductor",
                       TENSORSMITH_CACHE_DIR=f"{cache}/tensorsmith")
            subprocess.run([sys.executable, "-m", "tensorsmith.bench.cold_compile", _CHILD, backend], env=env,
                           check=False)


if __name__ == "__main__":
    main()

"""GPU check and timing of the Triton flash-attention kernels (kernels/flash_triton.py), in one
process that installs nothing:

1. parity: forward (out, lse) and backward (dq, dk, dv) against float64 attention computed with plain
   torch ops and autograd, relative Frobenius errors, over causal / bool padding mask / float bias /
   causal and sliding-window bool masks, head dims 32 to 256, float32 with TF32 off and on, bfloat16
   and float16;
2. timings (triton.testing.do_bench, median ms) at B=8, H=12, L=1024, D=64, causal, in float32 with
   TF32 on and in bfloat16: ours forward and forward+backward (also with causality given as a
   broadcast bool mask, as nanoGPT writes it) vs scaled_dot_product_attention with the
   memory-efficient kernel (and the flash kernel for bfloat16) vs the math version (matmul +
   masked_fill + softmax + matmul). TFLOP/s counts the causal half only: forward 2 * 2 * B*H*L*L*D / 2,
   backward 2.5 times that (five matmuls to the forward's two).

Every row runs inside try/except, so one failure prints an error row instead of ending the table.

    python -m tensorsmith.bench.attention_gpu            # everything
    python -m tensorsmith.bench.attention_gpu --quick    # fewer parity cases, L=512, B=4
"""
from __future__ import annotations

import argparse
import contextlib
import math
import traceback
import warnings

import torch
import torch.nn.functional as F

from tensorsmith.kernels import flash_triton

TOLERANCE = {"ieee": 1e-5, "tf32": 5e-3, torch.bfloat16: 2e-2, torch.float16: 5e-3}


@contextlib.contextmanager
def _tf32(on: bool):
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """Relative Frobenius error over the finite entries of `want` (nan if the -inf pattern differs)."""
    got, want = got.detach().double(), want.detach().double()
    finite = torch.isfinite(want)
    if not torch.equal(finite, torch.isfinite(got)):
        return math.nan
    return ((got - want)[finite].norm() / want[finite].norm().clamp_min(1e-30)).item()


def _reference(q, k, v, mask, is_causal, scale, grad_out):
    """(out, lse, dq, dk, dv) in float64 with the scores in memory."""
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    s = (q64 @ k64.transpose(-2, -1)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else s + mask.double()
    if is_causal:
        lq, lk = s.shape[-2:]
        s = s.masked_fill(~torch.ones(lq, lk, dtype=torch.bool, device=s.device).tril(), -math.inf)
    lse = torch.logsumexp(s.detach(), dim=-1)
    dead = torch.isinf(lse).unsqueeze(-1)
    p = torch.softmax(s.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    out = p @ v64
    out.backward(grad_out.double())
    return out.detach(), lse, q64.grad, k64.grad, v64.grad


def _mask(kind: str | None, B, H, Lq, Lk, dev):
    if kind == "bool":  # padding: each batch row keeps a prefix of the keys, broadcast over H and Lq
        lengths = torch.randint(Lk // 2, Lk + 1, (B,), device=dev)
        keep = torch.arange(Lk, device=dev)[None, :] < lengths[:, None]
        return keep[:, None, None, :].expand(B, H, Lq, Lk)
    if kind in ("tril", "window"):  # causal written as a mask (nanoGPT's buffer), stride 0 over B, H
        i, j = torch.arange(Lq, device=dev)[:, None], torch.arange(Lk, device=dev)[None, :]
        keep = (j <= i) & ((j > i - 64) if kind == "window" else True)
        return keep[None, None].expand(B, H, Lq, Lk)
    if kind == "bias":  # ALiBi-like, broadcast over the batch
        slopes = 2.0 ** -torch.arange(1, H + 1, device=dev, dtype=torch.float32)
        dist = (torch.arange(Lk, device=dev)[None, :] - torch.arange(Lq, device=dev)[:, None]).abs()
        return (-slopes[:, None, None] * dist)[None].expand(B, H, Lq, Lk)
    return None


# name, (B, H, Lq, Lk, D), causal, mask kind, dtype, TF32
CASES = [
    ("f32 D64 causal", (2, 4, 300, 300, 64), True, None, torch.float32, False),
    ("f32 D64 causal", (2, 4, 300, 300, 64), True, None, torch.float32, True),
    ("f32 D32 bool pad", (2, 4, 257, 389, 32), False, "bool", torch.float32, False),
    ("f32 D128 bias causal", (2, 4, 300, 300, 128), True, "bias", torch.float32, True),
    ("f32 D40 bias", (2, 3, 191, 77, 40), False, "bias", torch.float32, False),
    ("f32 D256 causal", (1, 2, 200, 200, 256), True, None, torch.float32, False),
    ("bf16 D64 causal", (2, 4, 300, 300, 64), True, None, torch.bfloat16, False),
    ("bf16 D128 bool pad", (2, 4, 257, 389, 128), False, "bool", torch.bfloat16, False),
    ("bf16 D96 bias causal", (2, 4, 300, 300, 96), True, "bias", torch.bfloat16, False),
    ("bf16 D256 causal", (1, 2, 200, 200, 256), True, None, torch.bfloat16, False),
    ("f16 D64 bool pad", (2, 4, 300, 300, 64), True, "bool", torch.float16, False),
    ("f32 D64 tril mask", (2, 4, 300, 300, 64), False, "tril", torch.float32, True),
    ("f32 D64 window mask", (2, 4, 333, 333, 64), False, "window", torch.float32, False),
    ("bf16 D64 tril mask", (2, 4, 300, 300, 64), False, "tril", torch.bfloat16, False),
    ("f16 D128 window mask", (2, 4, 333, 333, 128), False, "window", torch.float16, False),
]
QUICK_CASES = [0, 1, 3, 6, 7]


def parity(quick: bool) -> None:
    dev = torch.device("cuda")
    print("\n== parity vs float64 (relative Frobenius error) ==")
    print(f"{'case':<24}{'prec':>6}{'out':>10}{'lse':>10}{'dq':>10}{'dk':>10}{'dv':>10}  result")
    cases = [CASES[i] for i in QUICK_CASES] if quick else CASES
    for name, (B, H, Lq, Lk, D), causal, mask_kind, dtype, tf32 in cases:
        prec = ("tf32" if tf32 else "ieee") if dtype == torch.float32 else str(dtype).split(".")[-1]
        try:
            torch.manual_seed(0)
            q, k, v = (torch.randn(B, H, L, D, device=dev, dtype=dtype) for L in (Lq, Lk, Lk))
            mask = _mask(mask_kind, B, H, Lq, Lk, dev)
            scale = D ** -0.5
            why = flash_triton.unsupported(q, k, v, mask)
            if why:
                raise RuntimeError(f"unsupported: {why}")
            with _tf32(tf32):
                out, lse = flash_triton.forward(q, k, v, mask, causal, scale)
                grad_out = torch.randn_like(out)
                grads = flash_triton.backward(grad_out, q, k, v, out, lse, mask, causal, scale)
                torch.cuda.synchronize()
            want = _reference(q, k, v, mask, causal, scale, grad_out)
            errors = [_rel(got, w) for got, w in zip((out, lse, *grads), want)]
            tol = TOLERANCE["tf32" if tf32 else "ieee"] if dtype == torch.float32 else TOLERANCE[dtype]
            ok = all(e <= tol for e in errors)  # nan fails
            print(f"{name:<24}{prec:>6}" + "".join(f"{e:>10.2e}" for e in errors)
                  + f"  {'ok' if ok else 'FAIL'} (tol {tol:.0e})")
        except Exception as e:  # noqa: BLE001 - one row's failure must not end the table
            print(f"{name:<24}{prec:>6}  ERROR {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            traceback.print_exc(limit=3)


def _math_attention(q, k, v, causal, scale):
    s = (q @ k.transpose(-2, -1)) * scale
    if causal:
        L = s.shape[-1]
        s = s.masked_fill(~torch.ones(L, L, dtype=torch.bool, device=s.device).tril(), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def _sdpa(backend):
    from torch.nn.attention import sdpa_kernel

    def run(q, k, v, causal, scale):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    return run


def _time(fn, q, k, v, grad, causal, scale) -> tuple[float, float]:
    """Median ms of the forward and of forward + backward; fn None or a mask kind: ours, called
    directly (with that mask, causal off)."""
    import triton.testing

    if fn is None or isinstance(fn, str):
        B, H, L, _ = q.shape
        mask = _mask(fn, B, H, L, L, q.device) if fn else None
        causal = causal and mask is None

        def fwd():
            return flash_triton.forward(q, k, v, mask, causal, scale)

        def fwd_bwd():
            out, lse = flash_triton.forward(q, k, v, mask, causal, scale)
            return flash_triton.backward(grad, q, k, v, out, lse, mask, causal, scale)
        leaves = None
    else:
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]

        def fwd():
            with torch.no_grad():
                return fn(q, k, v, causal, scale)

        def fwd_bwd():
            fn(*leaves, causal, scale).backward(grad)
    fwd()
    fwd_bwd()  # compilation and first-call costs stay out of the timing
    t_fwd = triton.testing.do_bench(fwd, warmup=25, rep=100, return_mode="median")
    t_all = triton.testing.do_bench(fwd_bwd, warmup=25, rep=100, grad_to_none=leaves,
                                    return_mode="median")
    return t_fwd, t_all


def timings(quick: bool) -> None:
    from torch.nn.attention import SDPBackend

    B, H, L, D = (4, 12, 512, 64) if quick else (8, 12, 1024, 64)
    causal, scale = True, D ** -0.5
    fwd_flops = 4 * B * H * L * L * D / 2  # causal half
    print(f"\n== timings: B={B} H={H} L={L} D={D} causal, median ms (do_bench), TFLOP/s of the "
          "causal half ==")
    print(f"{'dtype':<10}{'implementation':<26}{'fwd ms':>9}{'TFLOP/s':>9}{'fwd+bwd ms':>12}{'TFLOP/s':>9}")
    dev = torch.device("cuda")
    for dtype, label in ((torch.float32, "f32 tf32"), (torch.bfloat16, "bf16")):
        impls = [("ours (Triton)", None), ("ours, tril as a mask", "tril"),
                 ("sdpa efficient", _sdpa(SDPBackend.EFFICIENT_ATTENTION))]
        if dtype == torch.bfloat16:
            impls.append(("sdpa flash", _sdpa(SDPBackend.FLASH_ATTENTION)))
        impls.append(("math (matmul+softmax)", _math_attention))
        for name, fn in impls:
            try:
                torch.manual_seed(0)
                q, k, v, grad = (torch.randn(B, H, L, D, device=dev, dtype=dtype) for _ in range(4))
                with _tf32(True):
                    t_fwd, t_all = _time(fn, q, k, v, grad, causal, scale)
                print(f"{label:<10}{name:<26}{t_fwd:>9.3f}{fwd_flops / t_fwd / 1e9:>9.1f}"
                      f"{t_all:>12.3f}{3.5 * fwd_flops / t_all / 1e9:>9.1f}")
            except Exception as e:  # noqa: BLE001
                print(f"{label:<10}{name:<26}  ERROR {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            finally:
                torch.cuda.empty_cache()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer parity cases and a smaller timing shape")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: this script checks the Triton kernels on a GPU")
        return 1
    import triton

    warnings.filterwarnings("ignore", message=".*TF32.*")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    parity(args.quick)
    timings(args.quick)
    fits = {k: v for k, v in flash_triton._FIRST_FIT.items() if v}
    if fits:
        print(f"\nconfigs that fell back for shared memory (key: index into the config list): {fits}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which attention forms the rewrite recognizes in the model zoo: `python -m tensorsmith.bench.attention_forms`.

Each zoo model (tiny size, CPU) takes one compiled training step with attention fusion on at any
size; the table lists what was rewritten (the form the model wrote, its masks, whose kernels run it)
and the loss and gradients' error against eager. A model whose attention is not rewritten says so.
"""
from __future__ import annotations

import argparse

import torch

from .. import config
from .. import records
from ..frontend import attention
from .workload import Workload
from .zoo import ZOO, build


def _step(model: torch.nn.Module, workload: Workload) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = workload.loss(model(**workload.train_inputs))
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in workload.model.parameters() if p.grad is not None]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def survey(name: str) -> list[str]:
    """Table rows for one zoo model."""
    workload = build(name, "tiny", "cpu")
    expected, expected_grads = _step(workload.model, workload)
    attention.MATCHES.clear()
    records.reset()
    torch._dynamo.reset()
    loss, grads = _step(torch.compile(workload.model, backend="tensorsmith"), workload)
    # Gradients compared as one vector: some are zero in exact arithmetic (a key bias under softmax)
    # and differ only by rounding noise, which per tensor would look like a large relative error.
    flat = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in expected_grads])
    error = max(_rel(loss, expected), _rel(*flat))
    pytorch_calls = sum(n for r in records.RECORDS for op, n in r.native.items() if "scaled_dot_product" in op)
    if not attention.MATCHES:
        return [f"| {name} | none rewritten | | | {pytorch_calls} | {error:.1e} |"]
    forms: dict[tuple, int] = {}
    for m in attention.MATCHES:
        key = (m.form, ", ".join(m.masks) or "no mask", m.kernel)
        forms[key] = forms.get(key, 0) + 1
    return [f"| {name} | {form} x{count} | {masks} | {kernel} | {pytorch_calls} | {error:.1e} |"
            for (form, masks, kernel), count in forms.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="zoo names (default: every transformer in the zoo)")
    args = parser.parse_args(argv)
    names = args.models or [n for n in ZOO if n != "resnet"]
    config.fuse_attention_min_mb = 0  # tiny models: show what would be rewritten at any size
    print("| model | rewritten | masks | kernels | PyTorch SDPA calls left | max rel err vs eager |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        missing = ZOO[name].missing()
        if missing:
            print(f"| {name} | not run: needs {', '.join(missing)} | | | | |")
            continue
        try:
            for row in survey(name):
                print(row, flush=True)
        except Exception as e:  # noqa: BLE001 - one model's failure is a row, not the end of the table
            print(f"| {name} | error: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''} | | | | |")


if __name__ == "__main__":
    main()

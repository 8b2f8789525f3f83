"""Which library runs a float32 matrix product on the CPU: PyTorch's BLAS (MKL on x86 builds) or
oneDNN (the `mkldnn` linear op), measured once per signature.

Neither wins everywhere: MKL takes a slow generic path on some processors (AMD's among them),
where oneDNN is up to twice as fast on products of transformer size, while oneDNN's per-call
overhead loses on small products. So the first call of each signature (shapes, strides, threads)
times both (in alternating calls, taking the median ratio of their times) and later calls take the
faster; oneDNN only when it wins by MARGIN. The choices are kept on disk with the compile cache
(choices.py), so a warm start times nothing. The two sum in different orders: results agree to
rounding, as any two BLAS kernels do.
"""
from __future__ import annotations

import statistics
import time

import torch

from ..choices import Choices

MARGIN = 0.95  # oneDNN must take at most this share of BLAS's time (median over rounds)
_REPEATS = 7
# signature -> run through oneDNN; the kind names the measuring rule, so that choices an earlier
# rule made are measured again
_CHOICE = Choices("cpu_matmul_paired")


_MIN_WORK = 64 ** 3  # products smaller than this always go to BLAS (no timing)
_AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def available() -> bool:
    """Whether this torch has oneDNN's linear op (else every product goes to BLAS)."""
    return _AVAILABLE


def eligible(a: torch.Tensor, b: torch.Tensor) -> bool:
    """oneDNN is here, and the operands are float32 on the CPU, `b` a matrix and `a` a matrix or
    a batch of rows."""
    return (_AVAILABLE and a.device.type == "cpu" and a.dim() >= 2 and b.dim() == 2
            and a.dtype == torch.float32 and b.dtype == torch.float32
            and a.numel() * b.shape[1] >= _MIN_WORK)


def worth(a, b) -> bool:
    """Whether operands of these IR types (static shapes) could take oneDNN: `eligible`, decided
    from types before any call. False rules out the measured choice for every call."""
    return (_AVAILABLE and a.dtype.torch_dtype == torch.float32 and b.dtype.torch_dtype == torch.float32
            and a.rank >= 2 and b.rank == 2 and a.numel * b.shape[1] >= _MIN_WORK)


def _onednn(bias, a, b):
    return torch.ops.mkldnn._linear_pointwise(a, b.mT, bias, "none", [], "")


def _blas(bias, a, b):
    return torch.matmul(a, b) if bias is None else torch.addmm(bias, a, b)


def _ratio(bias, a, b) -> float:
    """oneDNN's time over BLAS's: the median over _REPEATS rounds, each timing one call of each
    (after a warm-up of each) in alternating order, so that a slow spell of a shared machine skews
    a round or two, not the choice."""
    _onednn(bias, a, b)
    _blas(bias, a, b)
    ratios = []
    for round_ in range(_REPEATS):
        took = {}
        for fn in ((_onednn, _blas) if round_ % 2 == 0 else (_blas, _onednn)):
            start = time.perf_counter()
            fn(bias, a, b)
            took[fn] = time.perf_counter() - start
        ratios.append(took[_onednn] / max(took[_blas], 1e-9))
    return statistics.median(ratios)


def _run(bias, a, b) -> torch.Tensor:
    signature = (bias is None, tuple(a.shape), a.stride(), tuple(b.shape), b.stride(),
                 torch.get_num_threads())
    choice = _CHOICE.get(signature)
    if choice is None:
        choice = _ratio(bias, a, b) <= MARGIN
        _CHOICE[signature] = choice
    return _onednn(bias, a, b) if choice else _blas(bias, a, b)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for eligible operands, through the library measured faster for them."""
    if a.dim() == 2:
        return _run(None, a, b)
    rows = _run(None, a.reshape(-1, a.shape[-1]), b)
    return rows.view(*a.shape[:-1], b.shape[1])


def addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """bias + a @ b (nn.Linear's product) the same way; other operands go to torch.addmm."""
    if bias.dim() == 1 and bias.dtype == torch.float32 and bias.is_contiguous() and a.dim() == 2 \
            and eligible(a, b):
        return _run(bias, a, b)
    return torch.addmm(bias, a, b)

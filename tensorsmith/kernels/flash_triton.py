"""Fused attention in Triton, FlashAttention-2 style: the contract of kernels/__init__.py on CUDA (and
on the CPU under TRITON_INTERPRET=1, which is how the tests run it).

Forward: one program per (query block, batch * head) walks the key blocks with an online softmax in
float32 (running max m, running sum l, accumulator rescaled when m grows), so the Lq x Lk scores are
never in memory; scores are kept in log2 units (log2(e) folded into the scale) so that each
exponential is one exp2. Each program visits only the key blocks [lo, hi) that some of its queries
may see, and of those the run [full_lo, full_hi) that all of them see in full without any masking
(`_tile_bounds`): computed from the block indices when attention is causal without a mask, read from
a pre-pass over the mask otherwise (tile_ranges.py), so that a causal mask handed over as a tensor
costs what is_causal does. The backward is in flash_triton_backward.py.

Every launch is built as data (`Launch`) by one function per direction, which also picks the
configs, so that `precompile` compiles exactly what a later call launches.

@triton.jit reads TRITON_INTERPRET when it decorates, and tests set it after this module is imported:
the kernels come from `kernel_module`, which loads a second copy of the file for the other mode.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
from typing import Any, NamedTuple

import torch
import triton
import triton.language as tl
from triton import knobs
from triton.runtime.errors import OutOfResources

from ..codegen.triton.build import compile_and_load
from ..codegen.triton.launch import launch
from .tile_ranges import Job, Ranges, prepass

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MASK_DTYPES = (torch.bool, torch.float32, torch.bfloat16, torch.float16, torch.float64)
MAX_HEAD_DIM = 256
_MAX_GRID_Y = 65535  # batch * head is the grid's second axis
LOG2E = 1.4426950408889634


# ----------------------------------------------------------------------------------------------
# kernels
#
# Only builtins of triton.language (and functions jitted here) are called: tl.zeros, tl.sum, tl.max
# are themselves jitted in Triton's standard library, decorated for the mode of Triton's import,
# which the interpreter cannot call when TRITON_INTERPRET was set later.


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """a @ b in float32. The interpreter's dot multiplies bfloat16 as its raw uint16 bits, so there
    ("numpy", see `precision`) the operands go up to float32 first, which is exact."""
    if PRECISION == "numpy":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def _scores(q, kt, mask_ptrs, offs_m, offs_n, Lq, Lk, qk_scale,
            MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr, EVEN_N: tl.constexpr,
            PRECISION: tl.constexpr):
    """One (query block, key block) tile of scores in log2 units, -inf where a query may not look.
    Shared by the forward and both backward kernels so that they mask identically."""
    s = _dot(q, kt, PRECISION) * qk_scale
    if MASK_KIND == 1:  # bool, True = attend (loaded as uint8)
        inside = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
        keep = tl.load(mask_ptrs, mask=inside, other=0)
        s = tl.where(keep != 0, s, float("-inf"))
    if MASK_KIND == 2:  # additive, natural-log units
        inside = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
        bias = tl.load(mask_ptrs, mask=inside, other=0.0).to(tl.float32)
        s = s + bias * 1.4426950408889634
    if DIAGONAL:
        s = tl.where(offs_m[:, None] >= offs_n[None, :], s, float("-inf"))
    if not EVEN_N:
        s = tl.where(offs_n[None, :] < Lk, s, float("-inf"))
    return s


@triton.jit
def _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd, smm, smn,
                  Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
                  EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr):
    """Folds one key block into the running (acc, m, l) of a query block."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    kt = tl.load(K + offs_n[None, :] * skn + offs_d[:, None] * skd,
                 mask=(offs_n[None, :] < Lk) & (offs_d[:, None] < D), other=0.0)
    s = _scores(q, kt, M + offs_m[:, None] * smm + offs_n[None, :] * smn, offs_m, offs_n, Lq, Lk,
                qk_scale, MASK_KIND, DIAGONAL, EVEN_N, PRECISION)
    m_new = tl.maximum(m_i, tl.reduce(s, 1, _max))
    # A row with nothing unmasked yet keeps m = -inf; subtracting 0 instead keeps p = 0, not NaN.
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(s - m_safe[:, None])
    alpha = tl.math.exp2(m_i - m_safe)
    l_i = l_i * alpha + tl.reduce(p, 1, _add)
    v = tl.load(V + offs_n[:, None] * svn + offs_d[None, :] * svd,
                mask=(offs_n[:, None] < Lk) & (offs_d[None, :] < D), other=0.0)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, PRECISION)
    return acc, m_new, l_i


@triton.jit
def _tile_bounds(R, b, h, srb, srh, block, L_inner, RANGES: tl.constexpr, CAUSAL: tl.constexpr,
                 QUERIES_OUTER: tl.constexpr, BLOCK_OUTER: tl.constexpr, BLOCK_INNER: tl.constexpr):
    """[lo, full_lo, full_hi, hi), in inner blocks, for outer block `block` (a query block when
    QUERIES_OUTER, else a key block): blocks outside [lo, hi) are all masked, those in
    [full_lo, full_hi) need no masking at all. From the mask's pre-pass when RANGES, else from the
    causal diagonal, else everything."""
    n = (L_inner + BLOCK_INNER - 1) // BLOCK_INNER
    if RANGES:
        at = R + b * srb + h * srh + block * 4
        lo = tl.load(at)
        full_lo = tl.load(at + 1)
        full_hi = tl.load(at + 2)
        hi = tl.load(at + 3)
    elif CAUSAL:  # query i sees key j <= i
        start = block * BLOCK_OUTER
        if QUERIES_OUTER:  # key blocks up to the last query; in full, those up to the first
            lo = 0
            full_lo = 0
            hi = tl.minimum((start + BLOCK_OUTER + BLOCK_INNER - 1) // BLOCK_INNER, n)
            full_hi = tl.minimum((start + 1) // BLOCK_INNER, hi)
        else:  # query blocks from the first key on; in full, those from the last key on
            hi = n
            full_hi = n
            lo = tl.minimum(start // BLOCK_INNER, n)
            full_lo = tl.minimum((start + BLOCK_OUTER + BLOCK_INNER - 2) // BLOCK_INNER, n)
    else:
        lo = 0
        full_lo = 0
        full_hi = n
        hi = n
    return lo, full_lo, full_hi, hi


@triton.jit
def _forward_kernel(Q, K, V, M, R, O, LSE,
                    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                    smb, smh, smm, smn, srb, srh, sob, soh, som,
                    H, Lq, Lk, D, qk_scale,
                    MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
                    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_D: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    K += b * skb + h * skh
    V += b * svb + h * svh
    M += b * smb + h * smh
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqm + offs_d[None, :] * sqd,
                mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D), other=0.0)
    acc = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, dtype=tl.float32)
    lo, full_lo, full_hi, hi = _tile_bounds(R, b, h, srb, srh, tl.program_id(0), Lk, MASK_KIND != 0,
                                            CAUSAL, True, BLOCK_M, BLOCK_N)
    # Three runs of key blocks in order (so the sums are as without skipping): masked, in full
    # (no mask load, no causal test), masked. Blocks outside [lo, hi) would add nothing.
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(lo * BLOCK_N, full_lo * BLOCK_N, BLOCK_N):
            acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn,
                                          skd, svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND,
                                          CAUSAL, EVEN_N, PRECISION, BLOCK_N)
    for start_n in range(full_lo * BLOCK_N, full_hi * BLOCK_N, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd,
                                      svn, svd, smm, smn, Lq, Lk, D, qk_scale, 0, False, EVEN_N,
                                      PRECISION, BLOCK_N)
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(full_hi * BLOCK_N, hi * BLOCK_N, BLOCK_N):
            acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn,
                                          skd, svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND,
                                          CAUSAL, EVEN_N, PRECISION, BLOCK_N)
    empty = l_i == 0.0  # every key masked: out 0, lse -inf
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    tl.store(O + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :], out.to(O.dtype.element_ty),
             mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D))
    tl.store(LSE + bh * Lq + offs_m, lse, mask=offs_m < Lq)


# ----------------------------------------------------------------------------------------------
# host side


def interpreting() -> bool:
    """Whether Triton runs kernels on the CPU now (TRITON_INTERPRET=1), read at each call."""
    return bool(knobs.runtime.interpret)


@functools.cache
def kernel_module(name: str, interpreted: bool):
    """Module `name` with its @triton.jit functions decorated for `interpreted`: the module itself
    when it was imported in that mode, else a second copy loaded from its file with the flag set."""
    module = importlib.import_module(name)
    if module._INTERPRETED == interpreted:
        return module
    spec = importlib.util.spec_from_file_location(f"{name}_{'interpreted' if interpreted else 'jit'}",
                                                  module.__file__)
    copy = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = copy  # the JIT resolves a kernel's globals through its module
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if interpreted else "0"
    try:
        spec.loader.exec_module(copy)
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved
    return copy


def unsupported(q, k, v, mask) -> str | None:
    """Why these kernels cannot take the inputs, or None. Looks at metadata only (fake tensors do)."""
    if q.dtype not in _DTYPES:
        return f"dtype {q.dtype} (the Triton kernels take float32, bfloat16 and float16)"
    if k.dtype != q.dtype or v.dtype != q.dtype:
        return f"q, k, v dtypes differ ({q.dtype}, {k.dtype}, {v.dtype})"
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        return "q, k, v must be (B, H, L, D)"
    (B, H, _, D), Lk = q.shape, k.shape[2]
    if tuple(k.shape) != (B, H, Lk, D) or tuple(v.shape) != (B, H, Lk, D):
        return f"k {tuple(k.shape)} and v {tuple(v.shape)} do not match q {tuple(q.shape)}"
    if not 1 <= D <= MAX_HEAD_DIM:
        return f"head dim {D} (the Triton kernels take 1 to {MAX_HEAD_DIM})"
    if B * H > _MAX_GRID_Y:
        return f"batch * heads = {B * H} exceeds the grid's {_MAX_GRID_Y}"
    if mask is not None:
        if mask.dtype not in _MASK_DTYPES:
            return f"mask dtype {mask.dtype}"
        if mask.dim() != 4:
            return "mask must be a (B, H, Lq, Lk) view"
    devices = {t.device for t in (q, k, v) + ((mask,) if mask is not None else ())}
    if len(devices) != 1:
        return f"inputs on several devices {sorted(map(str, devices))}"
    if q.device.type != "cuda" and not interpreting():
        return f"device {q.device} (Triton runs on CUDA, or anywhere under TRITON_INTERPRET=1)"
    return None


def head_block(D: int) -> int:
    """D padded to a power of two, at least 16 (the smallest tl.dot operand)."""
    return max(16, triton.next_power_of_2(D))


def precision(dtype: torch.dtype) -> str:
    """tl.dot's input_precision: TF32 for float32 exactly when PyTorch's float32 matmuls use it.
    Under the interpreter "numpy": `_dot` then multiplies in float32 (numpy), whatever the dtype."""
    if interpreting():
        return "numpy"
    if dtype == torch.float32:
        return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    return "tf32"  # ignored for 16-bit inputs; the target's default


def device_guard(t: torch.Tensor | torch.device):
    """The tensor's (or the device's) CUDA device made current, where Triton compiles and launches."""
    device = t.device if isinstance(t, torch.Tensor) else t
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def mask_args(mask: torch.Tensor | None, q: torch.Tensor):
    """(tensor, its four strides, MASK_KIND): 0 no mask, 1 bool, 2 additive."""
    if mask is None:
        return q, (0, 0, 0, 0), 0
    if mask.dtype == torch.bool:
        return mask.view(torch.uint8), tuple(mask.stride()), 1
    return mask, tuple(mask.stride()), 2


def _forward_configs(block_d: int, itemsize: int) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) to try, best first. The q tile stays resident and
    k/v tiles are pipelined num_stages deep: shared memory is roughly
    (BLOCK_M + 2 * num_stages * BLOCK_N) * D * itemsize, to keep well under the H100's 227 KiB
    (Triton also stages layout conversions there). Smaller fallbacks follow in case a GPU has less;
    block sizes are multiples of 16 (the mask pre-pass's tiles, tile_ranges.FINE). The interpreter
    gets small tiles: its cost is per operation, and small tiles exercise the loops at test-sized
    lengths."""
    if interpreting():
        return [(32, 16, 4, 1)]
    if block_d <= 64:  # float32 (TF32) at GPT-2's shape on the H100: 8 warps 0.204 ms against 4's 0.243
        first = [(128, 64, 8, 3)] if itemsize == 4 else [(128, 64, 4, 3)]
    elif block_d <= 128:
        first = [(128, 64, 8, 3)] if itemsize == 2 else [(64, 32, 4, 2)]
    else:
        first = [(64, 32, 4, 2)] if itemsize == 2 else [(32, 16, 4, 2)]
    return first + [(64, 32, 4, 1), (32, 16, 4, 1), (16, 16, 4, 1)]


class _Pointer:
    """What Triton's warmup reads of a meta tensor argument: its dtype, and an address with the
    alignment the real tensor will have (allocations are 16-byte aligned, plus its storage offset)."""

    def __init__(self, t: torch.Tensor):
        self.dtype = t.dtype
        self.address = t.storage_offset() * t.element_size()

    def data_ptr(self) -> int:
        return self.address


class Launch(NamedTuple):
    """One kernel launch as data, so that running it and compiling it ahead read the same arguments."""
    kernel: Any  # a @triton.jit function
    grid: tuple
    args: tuple  # tensors (real, or meta when only compiled) and scalars
    options: dict  # constexprs, num_warps, num_stages

    def run(self) -> None:
        launch(self.kernel, self.grid, self.args, self.options)  # directly, once compiled

    def compile(self) -> None:
        """Compile without launching, then build and load the launcher and the GPU module, as the
        first launch would; raises OutOfResources where the kernel does not fit the GPU."""
        args = [_Pointer(a) if isinstance(a, torch.Tensor) and a.is_meta else a for a in self.args]
        compile_and_load(self.kernel, *args, grid=self.grid, **self.options)


_FIRST_FIT: dict = {}


def first_fit(key, configs: list, probe):
    """The first of `configs` whose kernel (the Launch probe(config)) fits the GPU, remembered per
    key: one past its shared memory raises OutOfResources when compiled and loaded, before any
    launch. Several threads may race to fill in a key; they write the same index."""
    if interpreting():
        return configs[0]
    if key not in _FIRST_FIT:
        for i, config in enumerate(configs):
            try:
                probe(config).compile()
            except OutOfResources:
                if i == len(configs) - 1:
                    raise
                continue
            _FIRST_FIT[key] = i
            break
    return configs[_FIRST_FIT[key]]


def mask_ranges(m, m_strides, mask_kind: int, is_causal: bool, B, H, Lq, Lk, jobs: list[Job]):
    """([Launch] of the mask's pre-pass, [Ranges] per job) for the kernels' loop bounds (see
    tile_ranges.py); without a mask no pre-pass, and the kernels bound their loops by the causal
    diagonal alone (the Ranges then point anywhere and are never read)."""
    if mask_kind == 0:
        return [], [Ranges(m, 0, 0)] * len(jobs)
    specs, ranges = prepass(kernel_module("tensorsmith.kernels.tile_ranges", interpreting()), m,
                            m_strides, mask_kind, is_causal, B, H, Lq, Lk, jobs)
    return [Launch(*spec) for spec in specs], ranges


def _forward_plan(q, k, v, mask, is_causal: bool, scale: float):
    """(out, lse, [Launch]) of the forward, for real tensors or meta ones (then only compiled): the
    one place that picks its config and arguments, for `forward` and `precompile` alike."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    out = torch.empty((B, H, Lq, D), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse, []
    kernels = kernel_module(__name__, interpreting())
    m, m_strides, mask_kind = mask_args(mask, q)
    block_d = head_block(D)
    constexprs = {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "PRECISION": precision(q.dtype),
                  "BLOCK_D": block_d}

    def plan(config):
        bm, bn, warps, stages = config
        pre, (r,) = mask_ranges(m, m_strides, mask_kind, is_causal, B, H, Lq, Lk, [Job(True, bm, bn)])
        args = (q, k, v, m, r.tensor, out, lse, *q.stride(), *k.stride(), *v.stride(), *m_strides,
                r.batch_stride, r.head_stride, *out.stride()[:3], H, Lq, Lk, D, scale * LOG2E)
        return pre + [Launch(kernels._forward_kernel, (triton.cdiv(Lq, bm), B * H), args,
                             {**constexprs, "EVEN_N": Lk % bn == 0, "BLOCK_M": bm, "BLOCK_N": bn,
                              "num_warps": warps, "num_stages": stages})]

    configs = _forward_configs(block_d, q.element_size())
    key = ("forward", block_d, q.dtype, mask_kind, bool(is_causal))
    return out, lse, plan(first_fit(key, configs, lambda c: plan(c)[-1]))


def forward(q, k, v, mask, is_causal: bool, scale: float):
    """(out, lse) of the contract: out in q's dtype, contiguous; lse float32 (B, H, Lq)."""
    with device_guard(q):
        out, lse, launches = _forward_plan(q, k, v, mask, is_causal, scale)
        for launch in launches:
            launch.run()
    return out, lse


def backward(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    """(dq, dk, dv) of the contract; see flash_triton_backward.py."""
    from . import flash_triton_backward

    return flash_triton_backward.backward(grad_out, q, k, v, out, lse, mask, is_causal, scale)


def _meta(t: torch.Tensor) -> torch.Tensor:
    """A meta tensor with t's dtype, shape, strides and storage offset (t may be a FakeTensor)."""
    extent = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) if t.numel() else 0
    storage = torch.empty(t.storage_offset() + extent, dtype=t.dtype, device="meta")
    return storage.as_strided(t.shape, t.stride(), t.storage_offset())


def planned_launches(q, k, v, mask, is_causal: bool) -> list[Launch]:
    """The launches `forward` then `backward` will make for inputs like these, built on meta tensors
    of the same dtype, shape, strides and storage offset (q, k, v, mask may be FakeTensors; mask as
    the op takes it, broadcastable to (B, H, Lq, Lk)); grad_out, out and lse as contiguous as
    `tensorsmith::attention_backward` passes them. Picking configs may compile (see first_fit)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    from . import flash_triton_backward

    with unset_fake_temporarily():
        q, k, v = (_meta(t) for t in (q, k, v))
        if mask is not None:
            mask = _meta(mask).expand(*q.shape[:-1], k.shape[-2])
        out, lse, launches = _forward_plan(q, k, v, mask, is_causal, 1.0)
        if out.numel() and k.shape[2]:
            launches += flash_triton_backward.plan(torch.empty_like(out), q, k, v, out, lse, mask,
                                                   is_causal, 1.0)[-1]
    return launches


def precompile(q, k, v, mask, is_causal: bool) -> None:
    """Compile and load, without launching anything, every kernel that `forward` and `backward`
    will launch for inputs like these (see `planned_launches`; FakeTensors do): the mask's
    pre-passes, the forward, delta, dK/dV and dQ kernels, with the configs the calls will pick, so
    that the first call finds them built. For a background thread: it touches only Triton's caches
    and `_FIRST_FIT`. Compiled as torch.backends.cuda.matmul.allow_tf32 says now, for 16-byte aligned
    allocations. Does nothing under the interpreter, for inputs the kernels do not take, or for
    symbolic shapes (the kernels specialize on sizes and strides)."""
    tensors = [t for t in (q, k, v, mask) if t is not None]
    if interpreting() or not all(isinstance(n, int) for t in tensors
                                 for n in (*t.shape, *t.stride(), t.storage_offset())):
        return
    if unsupported(q, k, v, None) is not None or q.device.type != "cuda" or (
            mask is not None and (mask.dtype not in _MASK_DTYPES or mask.device != q.device)):
        return
    with device_guard(q.device):
        for launch in planned_launches(q, k, v, mask, is_causal):
            launch.compile()

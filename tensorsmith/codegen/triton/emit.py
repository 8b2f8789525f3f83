"""Emit Triton source for kernel IR (codegen/kernel.py).

One `@triton.jit` function per kernel; each program computes an [XBLOCK, RBLOCK] tile of outer
points by inner elements (blocks.py chooses the sizes). Pointwise kernels tile both over a 2-D grid.
Reduction kernels run their stages in order per block of outer points: persistent (the whole row in
one tile; stages share loads) or looped (each run of independent stages loops over RBLOCK chunks).
A Reduce stage leaves an [XBLOCK, 1] local; Store stages write their buffer, masked to the valid
lanes. float16/bfloat16 values are float32 in registers, rounded to their type at each op
(values.py says why); reductions of them accumulate in float32. Every name in the source is derived
(out0, in0, x0, r0, acc0, t17), never a user string, and a kernel's function name is a digest of its
body, so identical kernels (one per transformer layer) are compiled once.

With symbolic sizes (ir/sizes.py) a kernel takes the graph's size symbols as integer arguments
after its buffers (not specialized on by Triton: one compile serves every value), its loop bounds,
masks and index coefficients are expressions of them, and its grid is counted at each launch
(blocks.py). Index arithmetic is int64 unless every index provably fits int32.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace

import torch

from ...errors import UnsupportedError
from ...ir.types import BOOL, F32, I32, DType
from ...ir.sizes import provably, size_max
from ..index import Affine, FloorDiv, Indirect, Mod, Var
from ..kernel import IndexValue, Kernel, Load, Local, Op, Reduce, Store
from .blocks import Blocks, choose
from .online_softmax import pair_online_sums, running_value
from .values import HALF, Scope, compute_type, round_half, tl_size, tl_type

PRELUDE = '''import triton
import triton.language as tl

from tensorsmith.codegen.triton import MATH as dm


# Reductions go through tl.reduce with these combiners, and tiles are made by tl.full: the
# standard library's tl.sum/tl.max/tl.zeros are themselves jitted functions, which the interpreter
# cannot call when triton was imported before TRITON_INTERPRET was set (tests set it late).
@triton.jit
def _ts_sum(a, b):
    return a + b


@triton.jit
def _ts_prod(a, b):
    return a * b


@triton.jit
def _ts_max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _ts_min(a, b):
    return tl.minimum(a, b)


# A float32 value rounded to bfloat16 / float16 (to nearest even), as float32.
@triton.jit
def _ts_round_bf16(x):
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return tl.where(x != x, x, rounded.to(tl.float32, bitcast=True))


@triton.jit
def _ts_round_f16(x):
ROUND_F16
'''
# bfloat16 is rounded on the bits (add half an ulp, less one unless the kept last bit is odd; NaN
# kept; overflow carries into inf): on a GPU Triton folds `x.to(tl.bfloat16).to(tl.float32)` away
# (no rounding at all), and its interpreter truncates instead.
# float16 goes through one opaque PTX conversion on a GPU for the same reason; the interpreter's
# numpy float16 conversion rounds to nearest even.
_ROUND_F16_NATIVE = """    return tl.inline_asm_elementwise("cvt.rn.f16.f32 $0, $1;", "=h,r", [x], dtype=tl.float16,
                                     is_pure=True, pack=1).to(tl.float32)
"""
_ROUND_F16_INTERPRETED = """    return x.to(tl.float16).to(tl.float32)
"""
INT32_LIMIT = 2**31 - 1


@dataclass
class TritonKernel:
    name: str  # k_<digest of the body>
    source: str  # the @triton.jit function
    args: list[str]  # buffers in call order: outputs, then inputs
    grid: tuple  # ints, or Python expressions of the size symbols (counted at each launch)
    num_warps: int
    checks_indices: bool  # may set the error flag (its last argument, which every kernel takes)
    sources: list[str] = field(default_factory=list)
    sizes: tuple = ()  # the size symbols it takes after its buffers (the graph's, when symbolic)


def _prod(values) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _inner_vars(kernel: Kernel) -> list:
    inner = [s.inner for s in kernel.stages if s.inner]
    if any(i != inner[0] for i in inner):
        raise UnsupportedError("stages of one kernel loop over different inner variables")
    return list(inner[0]) if inner else []


# -- index width --------------------------------------------------------------------------------
def _affine_extremes(affine: Affine, found: list):
    found.extend(affine.bounds())
    for atom, _ in affine.terms:
        if isinstance(atom, (FloorDiv, Mod)):
            _affine_extremes(atom.arg, found)
        elif isinstance(atom, Indirect):
            _expr_extremes(atom.value, found)


def _expr_extremes(expr, found: list):
    if isinstance(expr, (Load, IndexValue)):
        _affine_extremes(expr.index, found)
    elif isinstance(expr, Op):
        for a in expr.args:
            _expr_extremes(a, found)


def needs_int64(kernel: Kernel, x, r) -> bool:
    """Whether some index of the kernel may not fit int32 (then all index arithmetic is int64);
    with symbolic sizes, unless every index fits for every value of the symbols."""
    def fits() -> bool:
        found = [x * size_max(r, 1)]
        for stage in kernel.stages:
            _expr_extremes(stage.value, found)
            if isinstance(stage, Store):
                _affine_extremes(stage.index, found)
        return all(-(INT32_LIMIT // 2) < v < INT32_LIMIT // 2 for v in found)
    return not provably(fits)


# -- reductions ---------------------------------------------------------------------------------
def _acc_type(stage: Reduce) -> DType:
    """The accumulator's type: float32 for half values (as ATen accumulates them)."""
    if stage.dtype == BOOL or stage.kind in ("any", "all"):
        return I32
    return F32 if stage.dtype in HALF else stage.dtype


def _neutral(kind: str, dtype: DType) -> str:
    if kind in ("sum", "any"):
        return "0"
    if kind in ("prod", "all"):
        return "1"
    big = kind in ("min", "argmin")
    if dtype.is_float:
        return 'float("inf")' if big else 'float("-inf")'
    info = torch.iinfo(dtype.torch_dtype)
    return str(info.max if big else info.min)


_FINAL = {"sum": "tl.reduce({}, 1, _ts_sum)", "prod": "tl.reduce({}, 1, _ts_prod)",
          "max": "tl.reduce({}, 1, _ts_max)", "min": "tl.reduce({}, 1, _ts_min)",
          "any": "tl.reduce({}, 1, _ts_max)", "all": "tl.reduce({}, 1, _ts_min)"}
_COMBINE = {"sum": "{a} + {b}", "prod": "{a} * {b}", "max": "tl.maximum({a}, {b})",
            "min": "tl.minimum({a}, {b})", "any": "tl.maximum({a}, {b})", "all": "tl.minimum({a}, {b})"}


class _KernelEmitter:
    def __init__(self, kernel: Kernel, dtypes: dict[str, DType], sizes: tuple = ()):
        self.kernel, self.dtypes, self.sizes = kernel, dtypes, sizes
        self.inner = _inner_vars(kernel)
        self.x = _prod(v.extent for v in kernel.outer)
        self.r = _prod(v.extent for v in self.inner)
        self.reduces = any(isinstance(s, Reduce) for s in kernel.stages)
        self.blocks: Blocks = choose(self.x, self.r, self.reduces, kernel.lanes)
        self.idx = "tl.int64" if needs_int64(kernel, self.x, self.r) else "tl.int32"
        self.names: dict = {}
        for i, b in enumerate(kernel.outputs):
            self.names[b] = f"out{i}"
        for i, b in enumerate(kernel.inputs):
            self.names[b] = f"in{i}"
        for i, v in enumerate(kernel.outer):
            self.names[v] = f"x{i}"
        for i, v in enumerate(self.inner):
            self.names[v] = f"r{i}"
        for i, s in enumerate(s for s in kernel.stages if isinstance(s, Reduce)):
            self.names[s.name] = f"acc{i}"
        self.lines: list[str] = []
        self.counter = itertools.count()
        self.online: dict[str, Reduce] = {}  # a looped sum of exp(v - max) -> that max (online_softmax.py)
        self._outer: dict = {}  # expr -> reads no inner variable (memo of _outer_only)

    # -- header ---------------------------------------------------------------------------------
    def _decode(self, vars, flat: str, indent: str):
        stride = 1
        for k in reversed(range(len(vars))):
            v = vars[k]
            text = flat if provably(lambda: stride == 1) else f"({flat} // {tl_size(stride)})"
            if k > 0:
                text = f"{text} % {tl_size(v.extent)}"
            self.lines.append(f"{indent}{self.names[v]} = {text}")
            stride *= v.extent

    def _r_lanes(self, offset: str, indent: str) -> str | None:
        """Define ridx, the inner variables and the xr mask at `indent`; returns the mask name."""
        b = self.blocks
        self.lines.append(f"{indent}ridx = {offset} + tl.arange(0, {b.rblock})[None, :].to({self.idx})")
        self._decode(self.inner, "ridx", indent)
        ragged = not provably(lambda: self.r % b.rblock == 0)
        masks = [m for m in (self.xmask, f"ridx < {tl_size(self.r)}" if ragged else None) if m]
        if not masks:
            return None
        self.lines.append(f"{indent}xrmask = {' & '.join(f'({m})' for m in masks)}")
        return "xrmask"

    def emit(self) -> str:
        b, k = self.blocks, self.kernel
        params = [self.names[n] for n in [*k.outputs, *k.inputs]] + list(self.sizes) + ["err"]
        lines = self.lines
        sizes = ", ".join(f'"{n}"' for n in self.sizes)
        lines.append(f"@triton.jit(do_not_specialize=[{sizes}])" if self.sizes else "@triton.jit")
        lines.append(f"def KERNEL({', '.join(params)}):")
        if self.idx == "tl.int64":  # products of sizes are computed in the index type
            lines += [f"    {n} = {n}.to(tl.int64)" for n in self.sizes]
        self.x_program, self.r_program = "tl.program_id(0)", "tl.program_id(1)"
        if b.combined:  # a 1-D grid of (outer block, inner block), the inner ones fastest
            lines.append(f"    rblocks = (tl.maximum({tl_size(self.r)}, 1) + {b.rblock - 1}) // {b.rblock}")
            self.x_program, self.r_program = "(tl.program_id(0) // rblocks)", "(tl.program_id(0) % rblocks)"
        lines.append(f"    xidx = {self.x_program}.to({self.idx}) * {b.xblock} + "
                     f"tl.arange(0, {b.xblock})[:, None].to({self.idx})")
        self.xmask = None
        if not provably(lambda: self.x % b.xblock == 0):
            lines.append(f"    xmask = xidx < {tl_size(self.x)}")
            self.xmask = "xmask"
        self._decode(k.outer, "xidx", "    ")
        lines.append(f"    zx = tl.full([{b.xblock}, 1], 0, {self.idx})")
        lines.append(f"    zxr = tl.full([{b.xblock}, {b.rblock}], 0, {self.idx})")
        self.xscope = Scope(lines, "    ", self.counter, "zx", self.xmask, names=self.names)
        if provably(lambda: self.r == 0):  # no inner element: reductions give their neutral value,
            # inner stores nothing
            for stage in k.stages:
                if not (isinstance(stage, Store) and stage.inner):
                    self._stage(stage, self.xscope, looped=False)
        elif not b.looped:
            offset = f"{self.r_program}.to({self.idx}) * {b.rblock}" if not self.reduces else "0"
            mask = self._r_lanes(offset, "    ") if self.inner else self.xmask
            xr = Scope(lines, "    ", self.counter, "zxr", mask, self.xscope, self.names,
                       outer_only=self._outer_only)
            for stage in k.stages:
                self._stage(stage, xr if stage.inner else self.xscope, looped=False)
        else:
            for group in self._groups():
                if not group[0].inner:
                    self._stage(group[0], self.xscope, looped=False)
                    continue
                self._loop(group)
        return "\n".join(lines) + "\n"

    def _several_inner_blocks(self) -> bool:
        """Whether a pointwise kernel's programs may split a row (outer-only stores: only the first)."""
        return self.blocks.combined or (len(self.blocks.grid) > 1 and self.blocks.grid[1] > 1)

    def _outer_only(self, expr) -> bool:
        """Whether `expr` reads no inner index variable (then one value serves a whole row)."""
        found = self._outer.get(expr)
        if found is None:
            found = self._outer[expr] = _reads_no(expr, set(self.inner))
        return found

    def _groups(self) -> list[list]:
        """Consecutive inner-loop stages that may share one loop: none reads a local another of them
        defines. Outer-only stages stand alone."""
        groups: list[list] = []
        for stage in self.kernel.stages:
            last = groups[-1] if groups else None
            if stage.inner and last and last[0].inner:
                defined = {s.name for s in last if isinstance(s, Reduce)}
                if not _reads_locals(stage.value, defined):
                    last.append(stage)
                    continue
            groups.append([stage])
        self.online = pair_online_sums(groups)
        return groups

    # -- stages ---------------------------------------------------------------------------------
    def _loop(self, group: list):
        b = self.blocks
        for stage in group:
            if isinstance(stage, Reduce) and stage.name in self.online:
                self._online_sum_init(stage)
            elif isinstance(stage, Reduce):
                self._reduce_init(stage)
        self.lines.append(f"    for roff in range(0, {tl_size(self.r)}, {b.rblock}):")
        mask = self._r_lanes("roff", "        ")
        scope = Scope(self.lines, "        ", self.counter, "zxr", mask, self.xscope, self.names)
        for stage in group:
            if isinstance(stage, Reduce) and stage.name in self.online:
                self._online_sum_step(stage, scope)
            else:
                self._stage(stage, scope, looped=True)
        for stage in group:
            if isinstance(stage, Reduce):
                self._reduce_final(stage)

    def _stage(self, stage, scope: Scope, looped: bool):
        if isinstance(stage, Store):
            value = scope.value(stage.value)
            mask = scope.mask
            if not stage.inner and not self.reduces and self._several_inner_blocks():
                first = f"{self.r_program} == 0"
                mask = f"{mask} & ({first})" if mask else first
            dtype = self.dtypes[stage.buffer]
            if dtype in HALF and stage.value.dtype != dtype:  # (not made by fusion) round first
                value = scope.emit(round_half(f"{value}.to(tl.float32)", dtype))
            t = tl_type(dtype)
            scope.line(f"tl.store({self.names[stage.buffer]} + {scope.index(stage.index, None)}, "
                       f"{value}.to({t}){', mask=' + mask if mask else ''})")
        elif self.r == 0:
            value = "0" if stage.kind in ("argmax", "argmin") else _neutral(stage.kind, stage.dtype)
            scope.line(f"{self.names[stage.name]} = tl.full([{self.blocks.xblock}, 1], {value}, "
                       f"{compute_type(stage.dtype)})")
        elif stage.kind in ("argmax", "argmin"):
            self._arg_reduce(stage, scope, looped)
        else:
            self._reduce(stage, scope, looped)

    def _tile(self, stage: Reduce, scope: Scope, dtype: DType) -> tuple[str, str | None]:
        """The stage's value as a full tile of `dtype`, and the valid-lane mask."""
        v = scope.value(stage.value)
        if stage.kind in ("any", "all"):
            v = f"({v} != 0)"
        b = self.blocks
        tile = scope.emit(f"tl.broadcast_to({v}.to({compute_type(dtype)}), [{b.xblock}, {b.rblock}])")
        return tile, scope.mask

    def _reduce_init(self, stage: Reduce):
        b, acc = self.blocks, self.names[stage.name]
        if stage.kind in ("argmax", "argmin"):
            vt = compute_type(stage.value.dtype)
            self.lines.append(f"    {acc}_best = tl.full([{b.xblock}, 1], "
                              f"{_neutral(stage.kind, stage.value.dtype)}, {vt})")
            self.lines.append(f"    {acc}_nan = tl.full([{b.xblock}, 1], 0, tl.int1)")
            self.lines.append(f"    {acc} = tl.full([{b.xblock}, 1], 0, tl.int64)")
            return
        t = _acc_type(stage)
        self.lines.append(f"    {acc}_tile = tl.full([{b.xblock}, {b.rblock}], "
                          f"{_neutral(stage.kind, t)}, {tl_type(t)})")
        if stage.kind in ("max", "min") and t.is_float:
            self.lines.append(f"    {acc}_nans = tl.full([{b.xblock}, {b.rblock}], 0, tl.int32)")

    def _reduce(self, stage: Reduce, scope: Scope, looped: bool):
        t, acc = _acc_type(stage), self.names[stage.name]
        tile, mask = self._tile(stage, scope, t)
        masked = scope.emit(f"tl.where({mask}, {tile}, {_neutral(stage.kind, t)})") if mask else tile
        track_nan = stage.kind in ("max", "min") and t.is_float
        nans = None
        if track_nan:  # NaN wins, as in eager: counted apart from the max/min itself
            isnan = f"({tile} != {tile})" + (f" & {mask}" if mask else "")
            nans = scope.emit(f"tl.where({isnan}, 1, 0)")
        if looped:
            scope.line(f"{acc}_tile = " + _COMBINE[stage.kind].format(a=f"{acc}_tile", b=masked))
            if track_nan:
                scope.line(f"{acc}_nans = {acc}_nans + {nans}")
            return
        self._finish_reduce(stage, scope, masked, nans)

    def _online_sum_init(self, stage: Reduce):
        acc, t = self.names[stage.name], _acc_type(self.online[stage.name])
        self.lines.append(f'    {acc}_max = tl.full([{self.blocks.xblock}, 1], float("-inf"), {tl_type(t)})')
        self.lines.append(f"    {acc}_sum = tl.full([{self.blocks.xblock}, 1], 0, {tl_type(_acc_type(stage))})")

    def _online_sum_step(self, stage: Reduce, scope: Scope):
        """One chunk of sum(exp(v - max)) against the row's running max: the sum so far is scaled
        by exp(old max - new max) and the chunk's terms are added. While a row has seen only -inf
        its running max is -inf and it adds nothing (exp(-inf - -inf) would be NaN)."""
        peak = self.online[stage.name]
        acc = self.names[stage.name]
        values, mask = self._tile(peak, scope, _acc_type(peak))
        if mask:
            values = scope.emit(f'tl.where({mask}, {values}, float("-inf"))')
        running = scope.emit(f"tl.maximum({acc}_max, tl.reduce({values}, 1, _ts_max)[:, None])")
        live = scope.emit(f'{running} != float("-inf")')
        self.names[f"{peak.name}_running"] = running
        terms, _ = self._tile(replace(stage, value=running_value(stage, Local(f"{peak.name}_running",
                                                                              peak.dtype))),
                              scope, _acc_type(stage))
        keep = f"{live} & {mask}" if mask else live
        scope.line(f"{acc}_sum = {acc}_sum * tl.where({live}, dm.exp({acc}_max - {running}), 0) + "
                   f"tl.reduce(tl.where({keep}, {terms}, 0), 1, _ts_sum)[:, None]")
        scope.line(f"{acc}_max = {running}")

    def _reduce_final(self, stage: Reduce):
        if stage.kind in ("argmax", "argmin"):
            return
        acc = self.names[stage.name]
        peak = self.online.get(stage.name)
        if peak is not None:  # the sum, scaled from the running max to the row's max (NaN stays NaN)
            result = self.xscope.emit(f"{acc}_sum * dm.exp({acc}_max - "
                                      f"{self.names[peak.name]}.to({tl_type(_acc_type(peak))}))")
            self._assign(stage, self.xscope, result)
            return
        track_nan = stage.kind in ("max", "min") and _acc_type(stage).is_float
        self._finish_reduce(stage, self.xscope, f"{acc}_tile", f"{acc}_nans" if track_nan else None)

    def _finish_reduce(self, stage: Reduce, scope: Scope, tile: str, nans: str | None):
        result = scope.emit(_FINAL[stage.kind].format(tile) + "[:, None]")
        if nans:
            count = scope.emit(f"tl.reduce({nans}, 1, _ts_sum)[:, None]")
            result = scope.emit(f'tl.where({count} > 0, float("nan"), {result})')
        self._assign(stage, scope, result)

    def _assign(self, stage: Reduce, scope: Scope, result: str):
        """The stage's local from its row result (accumulated in the accumulator type)."""
        acc, t = self.names[stage.name], compute_type(stage.dtype)
        convert = f"{result} != 0" if stage.dtype == BOOL else f"{result}.to({t})"
        if stage.dtype in HALF:  # accumulated in float32: round the row's result once
            convert = round_half(convert, stage.dtype)
        scope.line(f"{acc} = {convert}")

    def _arg_reduce(self, stage: Reduce, scope: Scope, looped: bool):
        """The first index of the max (min); the first NaN's index if there is a NaN, as eager."""
        if len(stage.inner) != 1:
            raise UnsupportedError("argmax/argmin over several dimensions")
        acc, kind = self.names[stage.name], stage.kind
        tile, mask = self._tile(stage, scope, stage.value.dtype)
        index = scope.emit(f"tl.broadcast_to({self.names[stage.inner[0]]}.to(tl.int64), "
                           f"[{self.blocks.xblock}, {self.blocks.rblock}])")
        isnan = scope.emit(f"({tile} != {tile})" + (f" & {mask}" if mask else ""))
        valid = f"({isnan} == 0)" + (f" & {mask}" if mask else "")
        has_nan = scope.emit(f"tl.reduce({isnan}.to(tl.int32), 1, _ts_max)[:, None] > 0")
        pick = "_ts_max" if kind == "argmax" else "_ts_min"
        best = scope.emit(f"tl.reduce(tl.where({valid}, {tile}, {_neutral(kind, stage.value.dtype)}), 1, "
                          f"{pick})[:, None]")
        hit = scope.emit(f"tl.where({has_nan}, {isnan}, ({tile} == {best})"
                         + (f" & {mask})" if mask else ")"))
        first = scope.emit(f"tl.reduce(tl.where({hit}, {index}, {tl_size(self.r)}), 1, _ts_min)[:, None]")
        if not looped:
            scope.line(f"{acc} = {first}")
            return
        better = ">" if kind == "argmax" else "<"
        take = scope.emit(f"({acc}_nan == 0) & ({has_nan} | ({best} {better} {acc}_best))")
        scope.line(f"{acc}_best = tl.where({take}, {best}, {acc}_best)")
        scope.line(f"{acc} = tl.where({take}, {first}, {acc})")
        scope.line(f"{acc}_nan = {acc}_nan | {has_nan}")


def _reaches(expr, hit) -> bool:
    """Whether `hit` holds for something `expr` reads: a Local or Const, or an index atom (Var,
    Indirect, FloorDiv, Mod) of a load's or iota's index, through ops, divisions and the values of
    indirect indices."""
    if isinstance(expr, Op):
        return any(_reaches(a, hit) for a in expr.args)
    if isinstance(expr, (Load, IndexValue)):
        return _index_reaches(expr.index, hit)
    return hit(expr)


def _index_reaches(affine: Affine, hit) -> bool:
    for atom, _ in affine.terms:
        if hit(atom):
            return True
        if isinstance(atom, (FloorDiv, Mod)) and _index_reaches(atom.arg, hit):
            return True
        if isinstance(atom, Indirect) and _reaches(atom.value, hit):
            return True
    return False


def _reads_no(expr, variables: set) -> bool:
    """Whether `expr` reads none of `variables` (index variables), through indices and data."""
    return not _reaches(expr, lambda x: isinstance(x, Var) and x in variables)


def _reads_locals(expr, names: set) -> bool:
    return _reaches(expr, lambda x: isinstance(x, Local) and x.name in names)


def _checks_indices(kernel: Kernel) -> bool:
    def indirect(x):
        return isinstance(x, Indirect)
    return any(_reaches(s.value, indirect) or (isinstance(s, Store) and _index_reaches(s.index, indirect))
               for s in kernel.stages)


def emit_kernel(kernel: Kernel, dtypes: dict[str, DType], sizes: tuple = ()) -> TritonKernel | None:
    """The Triton function for `kernel`, or None when it has no outer point to compute; `sizes`
    names the size symbols it takes (the graph's, when symbolic)."""
    for b in [*kernel.inputs, *kernel.outputs]:
        tl_type(dtypes[b])  # raises UnsupportedError for a dtype Triton kernels do not take
    emitter = _KernelEmitter(kernel, dtypes, sizes)
    if provably(lambda: emitter.x == 0):
        return None
    body = emitter.emit()
    name = "k_" + hashlib.sha256(body.encode()).hexdigest()[:16]
    b = emitter.blocks
    return TritonKernel(name, body.replace("def KERNEL(", f"def {name}(", 1),
                        [*kernel.outputs, *kernel.inputs], b.grid, b.num_warps,
                        _checks_indices(kernel), list(kernel.sources), tuple(sizes))


def emit_module(kernels: list[TritonKernel], interpreted: bool = False) -> str:
    """One module holding each distinct kernel function once; `interpreted`: for TRITON_INTERPRET=1
    (math through PyTorch instead of libdevice)."""
    prelude = PRELUDE.replace("MATH", "interpreted_math" if interpreted else "device_math")
    prelude = prelude.replace("ROUND_F16\n", _ROUND_F16_INTERPRETED if interpreted else _ROUND_F16_NATIVE)
    seen, parts = set(), [prelude]
    for k in kernels:
        if k.name not in seen:
            seen.add(k.name)
            parts.append("\n" + k.source)
    return "\n".join(parts)


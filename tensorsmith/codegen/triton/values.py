"""Value and index expressions of kernel IR as Triton statements, for one scope of a kernel.

Every value is a 2-D tile: `[XBLOCK, 1]` in the x scope (one value per outer point) or
`[XBLOCK, RBLOCK]` in an xr scope (outer points by inner elements); constants are `[1, 1]` and
broadcast. Each distinct subexpression is computed once per scope and guard.

Semantics follow codegen/cpp/emit.py exactly: NaN-propagating max/min, floor division and modulo of
possibly negative index offsets, bool as a 1-bit value, and an index read from data checked
against its extent: out of range sets the kernel's error flag (the runtime raises
IndexOutOfRange) and is read as 0, never outside a buffer. A `guarded_select`'s branches may index
out of range when not taken: their loads are masked by the branch's condition, so they never read
there, and their index checks only count where the branch is taken.

float16 and bfloat16 ("half" below) follow eager PyTorch, where each ATen op on half tensors
computes in float32 and rounds its result to the half type:

- In registers a half value is a float32 tile holding a value the half type represents exactly.
  Loads upcast (`tl.load(...).to(tl.float32)`, exact); stores downcast to the buffer's type, which
  is exact too since the value was rounded already (a float32 value stored into a half buffer is
  rounded to nearest even first).
- Rounding at each op boundary, not only at stores: every op whose IR result type is half computes
  in float32 (libdevice math, div_rn, sqrt_rn: the float32 paths) and rounds its result to the half
  type (`round_half`, round to nearest even; overflow gives +-inf, as float16 does in eager). Chosen
  over keeping float32 through a fused kernel (Inductor's default) because it costs two
  instructions per op on a GPU (cvt.rn to half and back; memory-bound kernels do not notice) and
  makes a fused chain give eager's numbers, often to the bit, instead of merely closer ones: a
  model compiled under autocast then matches eager autocast, and an explicit `.to(bfloat16)` in
  the model keeps its rounding. Ops whose result is exactly one of their half arguments, or an
  integer or sign of one (max, min, neg, abs, sign, floor, ceil, round, trunc, select), need no
  rounding.
- Converts: to half rounds (from float64 through float32 first, as c10's BFloat16/Half(float)
  conversions do, so it rounds twice exactly like eager; from integers likewise through float32);
  from half to float32/float64 is exact; to an integer truncates the float32 value, as
  static_cast does in eager; to bool is `!= 0`.
- Comparisons, where/select, is_finite and index values compare and pick the float32 values, which
  are the half values exactly: the same answers as on half. Bool and integer values are unaffected.
- Constants of a half type are rounded to it (through float32, like any float64 value) when the
  kernel is generated; float32 constants stay float32.
- Reductions (emit.py) accumulate half values in float32, as ATen does for sum and mean of half
  (and for prod on CUDA; its CPU prod of bfloat16 rounds at each step), and round the row's result
  once; max/min/argmax/argmin compare the float32 values (exact).
- NaN and +-inf pass through unchanged; NaN stays NaN through rounding (its payload may differ).

The rounds are `_ts_round_bf16` / `_ts_round_f16` of the kernel module's prelude (emit.py): bfloat16
by an integer round-to-nearest-even on the float32 bits, float16 by one opaque PTX conversion on a
GPU: Triton folds a plain `x.to(tl.bfloat16).to(tl.float32)` away there (no rounding at all), and
its interpreter truncates float32 -> bfloat16.
"""
from __future__ import annotations

import math

import torch

from ...errors import UnsupportedError
from ...ir.sizes import Sym, provably
from ...ir.types import BF16, BOOL, F16, F32, F64, I8, I16, I32, I64, U8, DType
from ..index import Affine, FloorDiv, Indirect, Mod, Var
from ..kernel import Const, IndexValue, Load, Local, Op

# Element types of buffers; values of the half types are float32 in registers (compute_type).
TL_TYPES = {F32: "tl.float32", F64: "tl.float64", I8: "tl.int8", I16: "tl.int16", I32: "tl.int32",
            I64: "tl.int64", U8: "tl.uint8", BOOL: "tl.int1", F16: "tl.float16", BF16: "tl.bfloat16"}
HALF = (F16, BF16)
_ROUND = {BF16: "_ts_round_bf16({})", F16: "_ts_round_f16({})"}
# Ops whose half result is exactly an argument's value, or an integer or sign of one: no rounding.
_EXACT = {"max", "min", "neg", "abs", "sign", "floor", "ceil", "round", "trunc", "select",
          "guarded_select"}
_DM = {"exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1", "sin": "sin", "cos": "cos",
       "tan": "tan", "tanh": "tanh", "erf": "erf", "asin": "asin", "acos": "acos", "atan": "atan",
       "sinh": "sinh", "cosh": "cosh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh",
       "log2": "log2", "exp2": "exp2", "floor": "floor", "ceil": "ceil", "round": "rint",
       "trunc": "trunc", "pow": "pow", "atan2": "atan2", "fmod": "fmod"}
_INFIX = {"add": "+", "sub": "-", "mul": "*"}
_COMPARE = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


def tl_type(dtype: DType) -> str:
    """The Triton element type of a buffer of `dtype`."""
    try:
        return TL_TYPES[dtype]
    except KeyError:
        raise UnsupportedError(f"no Triton kernel for {dtype}") from None


def compute_type(dtype: DType) -> str:
    """The Triton element type of a value of `dtype` in registers: float32 for the half types."""
    return "tl.float32" if dtype in HALF else tl_type(dtype)


def round_half(text: str, dtype: DType) -> str:
    """The float32 value `text` rounded to the half type `dtype` (to nearest even), as float32."""
    return _ROUND[dtype].format(text)


def tl_size(size) -> str:
    """A size in a kernel: an int, or a symbolic one as an expression of the size arguments."""
    return f"({size})" if isinstance(size, Sym) else str(size)


def tl_constant(value, dtype: DType) -> str:
    """A [1, 1] tile holding `value` as `dtype` (an explicit type: no promotion surprises); a half
    constant is rounded to its type here and held as float32. A symbolic size is computed from
    the kernel's size arguments, converted as a constant would be."""
    if isinstance(value, Sym):
        tile = f"(tl.full([1, 1], 0, tl.int64) + {tl_size(value)})"
        if dtype == BOOL:
            return f"({tile} != 0)"
        if dtype in HALF:
            return round_half(f"{tile}.to(tl.float32)", dtype)
        return f"{tile}.to({compute_type(dtype)})"
    if dtype == BOOL:
        text = "1" if value else "0"
    elif dtype.is_float:
        value = float(value)
        if dtype in HALF:
            value = torch.tensor(value, dtype=torch.float32).to(dtype.torch_dtype).item()
        text = f'float("{value}")' if math.isnan(value) or math.isinf(value) else repr(value)
    else:
        text = str(int(value))
    return f"tl.full([1, 1], {text}, {compute_type(dtype)})"


class Scope:
    """Statements at one indentation and tile shape; sees the values of its parent scope."""

    def __init__(self, lines: list[str], indent: str, counter, zero: str, mask: str | None,
                 parent: Scope | None = None, names: dict | None = None, outer_only=None):
        self.lines, self.indent, self.counter = lines, indent, counter
        self.zero = zero  # the int index tile of this scope's shape (indices are full tiles)
        self.mask = mask  # active lanes (None: all)
        self.parent = parent
        self.names = names  # Var/Local -> generated name (shared by the kernel's scopes)
        self.cache: dict = {}
        # expr -> whether it reads no inner index: such a value (a row's target, mean or scale) is
        # computed once per row in the parent's [XBLOCK, 1] tile, not once per element; only where
        # the parent's statements go in the same place (not from inside a loop)
        self.outer_only = outer_only if parent is not None and parent.indent == indent else None

    # -- statements -------------------------------------------------------------------------------
    def emit(self, text: str) -> str:
        name = f"t{next(self.counter)}"
        self.lines.append(f"{self.indent}{name} = {text}")
        return name

    def line(self, text: str):
        self.lines.append(f"{self.indent}{text}")

    def _lookup(self, key):
        scope = self
        while scope is not None:
            if key in scope.cache:
                return scope.cache[key]
            scope = scope.parent
        return None

    def mask_with(self, guard: str | None) -> str | None:
        parts = [m for m in (self.mask, guard) if m]
        return " & ".join(parts) if parts else None

    # -- indices ----------------------------------------------------------------------------------
    def index(self, affine: Affine, guard: str | None) -> str:
        parts = [self.zero]
        if not provably(lambda: affine.const == 0):
            parts.append(tl_size(affine.const))
        for atom, coef in affine.terms:
            text = self._atom(atom, guard)
            parts.append(text if provably(lambda: coef == 1) else f"{tl_size(coef)} * {text}")
        return "(" + " + ".join(parts) + ")"

    def _atom(self, atom, guard) -> str:
        if isinstance(atom, Var):
            return self.names[atom]
        if isinstance(atom, (FloorDiv, Mod)):
            if not provably(lambda: atom.divisor > 0):
                raise UnsupportedError("index division by a number that may not be positive")
            arg = self.index(atom.arg, guard)
            d = tl_size(atom.divisor)
            if provably(lambda: atom.arg.bounds()[0] >= 0):  # Triton's // and % truncate; they floor when >= 0
                return f"({arg} // {d})" if isinstance(atom, FloorDiv) else f"({arg} % {d})"
            arg = self.emit(arg)
            mod = f"(({arg} % {d}) + {d}) % {d}"  # floor modulo under truncating or flooring %
            return f"(({arg} - {mod}) // {d})" if isinstance(atom, FloorDiv) else f"({mod})"
        assert isinstance(atom, Indirect)
        key = ("indirect", atom, guard)
        found = self._lookup(key)
        if found is None:
            found = self.cache[key] = self._indirect(atom, guard)
        return found

    def _indirect(self, atom: Indirect, guard) -> str:
        raw = self.emit(f"{self.value(atom.value, guard)}.to(tl.int64)")
        bad = self.emit(f"({raw} < 0) | ({raw} >= {tl_size(atom.extent)})")
        mask = self.mask_with(guard)
        self.line(f"tl.store(err + {self.zero} * 0, tl.full([1, 1], 1, tl.int32), "
                  f"mask={bad}{' & ' + mask if mask else ''})")
        return self.emit(f"tl.where({bad}, 0, {raw}).to({self.zero}.dtype)")

    # -- values -----------------------------------------------------------------------------------
    def value(self, expr, guard: str | None = None) -> str:
        """A name (or constant text) for `expr`'s tile, computing it once per scope and guard."""
        if isinstance(expr, Const):
            return tl_constant(expr.value, expr.dtype)
        if isinstance(expr, Local):
            return self.names[expr.name]
        if guard is None and self.outer_only is not None and self.outer_only(expr):
            return self.parent.value(expr)
        for key in ((expr, guard), (expr, None)):
            found = self._lookup(key)
            if found is not None:
                return found
        name = self.emit(self._compute(expr, guard))
        self.cache[(expr, guard)] = name
        return name

    def _compute(self, expr, guard) -> str:
        if isinstance(expr, Load):
            mask = self.mask_with(guard)
            index = self.index(expr.index, guard)
            load = f"tl.load({self.names[expr.buffer]} + {index}{', mask=' + mask if mask else ''})"
            return f"{load}.to(tl.float32)" if expr.dtype in HALF else load
        if isinstance(expr, IndexValue):
            value = f"{self.index(expr.index, guard)}.to({compute_type(expr.dtype)})"
            return round_half(value, expr.dtype) if expr.dtype in HALF else value
        assert isinstance(expr, Op), expr
        t = compute_type(expr.dtype)
        if expr.name in ("select", "guarded_select"):
            cond = self.value(expr.args[0], guard)
            if expr.name == "select":  # both branches are valid everywhere
                a, b = (self.value(x, guard) for x in expr.args[1:])
            else:
                taken = self.emit(f"{cond} & {guard}" if guard else cond)
                not_taken = self.emit(f"({cond} == 0) & {guard}" if guard else f"{cond} == 0")
                a, b = self.value(expr.args[1], taken), self.value(expr.args[2], not_taken)
            return f"tl.where({cond}, {a}.to({t}), {b}.to({t}))"
        args = [self.value(a, guard) for a in expr.args]
        text = op_text(expr, args)
        if expr.dtype in HALF and expr.name not in _EXACT:
            return round_half(text, expr.dtype)
        return text


def op_text(expr: Op, args: list[str]) -> str:
    """The Triton expression of one elementwise op, converted to its result's compute type (a half
    result is the float32 value before rounding: Scope rounds it)."""
    name, t, arg_dtype = expr.name, compute_type(expr.dtype), expr.args[0].dtype
    if name == "compare":
        return f"{args[0]} {_COMPARE[expr.dir]} {args[1]}"
    if name == "convert":
        if expr.dtype == BOOL:
            return f"{args[0]} != 0"
        if expr.dtype in HALF and arg_dtype != F32 and arg_dtype not in HALF:
            return f"{args[0]}.to(tl.float32)"  # from float64 or an integer: through float32
        return f"{args[0]}.to({t})"
    if name == "is_finite":
        return f"({args[0]} == {args[0]}) & (tl.abs({args[0]}) != float(\"inf\"))"
    if name in ("and", "or", "xor"):
        return f"{args[0]} {dict(zip(('and', 'or', 'xor'), '&|^'))[name]} {args[1]}"
    if name == "not":
        return f"{args[0]} == 0" if arg_dtype == BOOL else f"(~{args[0]}).to({t})"
    if arg_dtype == BOOL:
        raise UnsupportedError(f"no Triton kernel for {name} of bool")
    if name in _INFIX:
        return f"({args[0]} {_INFIX[name]} {args[1]}).to({t})"
    if name in ("max", "min"):  # NaN-propagating, as ts_max/ts_min in the C++ prelude
        a, b = args
        return f"tl.where(({a} != {a}) | ({a} {'>' if name == 'max' else '<'} {b}), {a}, {b})"
    if name == "neg":
        return f"(-{args[0]}).to({t})"
    if name == "abs":
        return f"tl.where({args[0]} < 0, -{args[0]}, {args[0]}).to({t})" if not arg_dtype.is_float \
            else f"tl.abs({args[0]})"
    if name == "sign":
        a = args[0]
        return f"tl.where({a} != {a}, {a}, (({a} > 0).to({t}) - ({a} < 0).to({t})))"
    if not expr.dtype.is_float:
        raise UnsupportedError(f"no Triton kernel for {name} of {expr.dtype}")
    one = f"tl.full([1, 1], 1, {t})"
    # Correctly rounded division and square root (plain `/` and tl.sqrt are approximate in
    # float32; div_rn/sqrt_rn take float32 only, and float64's plain forms are exact).
    f32 = t == "tl.float32"
    div = (lambda a, b: f"tl.div_rn({a}, {b})") if f32 else (lambda a, b: f"(({a}) / ({b}))")
    sqrt = (lambda a: f"tl.sqrt_rn({a})") if f32 else (lambda a: f"tl.sqrt({a})")
    if name == "div":
        return div(args[0], args[1])
    if name == "sqrt":
        return sqrt(args[0])
    if name == "rsqrt":
        return div(one, sqrt(args[0]))
    if name == "reciprocal":
        return div(one, args[0])
    if name == "sigmoid":
        return div(one, f"{one} + dm.exp(-{args[0]})")
    if name == "remainder":  # the sign of the divisor, as ts_remainder
        a, b = args
        return (f"tl.where((dm.fmod({a}, {b}) != 0) & ((dm.fmod({a}, {b}) < 0) != ({b} < 0)), "
                f"dm.fmod({a}, {b}) + {b}, dm.fmod({a}, {b}))")
    if name in _DM:
        return f"dm.{_DM[name]}({', '.join(args)})"
    raise UnsupportedError(f"no Triton kernel for {name}")

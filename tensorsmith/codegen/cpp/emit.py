"""Emit C++ (OpenMP parallel outer loops, `omp simd` inner loops) for kernel IR.

Every kernel is `extern "C" int name(void* buffer, ..., int64_t s0, ...)`, taking its output buffers
then its input buffers (contiguous, row-major), then the values of the graph's size symbols when its
sizes are symbolic (loop bounds and index arithmetic are then C expressions of them), and returning
a bit set: ERROR_INDEX when an index read from data was
out of range (so the caller raises, as eager does, instead of reading outside a buffer), and, when
emitted with `check_numerics`, ERROR_NONFINITE when a floating value it stored was NaN or Inf
(one flag OR-reduced over the stores, in the same vectorized loops: no extra pass over memory).
"""
from __future__ import annotations

import itertools
import math

from ...ir.sizes import Sym, provably
from ...ir.types import BOOL, F32, F64, I8, I16, I32, I64, U8, DType
from ..index import Affine, FloorDiv, Indirect, Mod, Var
from ..kernel import Const, IndexValue, Kernel, Load, Local, Op, Reduce, Store
from .split_loops import split_inner_loops

# bool is held as uint8_t (0 or 1, as PyTorch stores it): gcc does not vectorize loads of `bool`.
C_TYPES = {F32: "float", F64: "double", I8: "int8_t", I16: "int16_t", I32: "int32_t",
           I64: "int64_t", U8: "uint8_t", BOOL: "uint8_t"}
PARALLEL_THRESHOLD = 32768  # element visits below which threads cost more than they save
ERROR_INDEX = 1  # a kernel's return bits
ERROR_NONFINITE = 2

PRELUDE = r"""
#include <cmath>
#include <cstdint>
#include <limits>
#include <algorithm>

static inline int64_t ts_index(int64_t i, int64_t extent, int* error) {
  if (i < 0 || i >= extent) { *error = 1; return 0; }
  return i;
}
static inline int64_t ts_floordiv(int64_t a, int64_t d) { return a / d - ((a % d != 0) && ((a < 0) != (d < 0))); }
static inline int64_t ts_mod(int64_t a, int64_t d) { const int64_t r = a % d; return r != 0 && ((r < 0) != (d < 0)) ? r + d : r; }
template <typename T> static inline T ts_max(T a, T b) { return (a != a || a > b) ? a : b; }
template <typename T> static inline T ts_min(T a, T b) { return (a != a || a < b) ? a : b; }
template <typename T> static inline T ts_remainder(T a, T b) {
  T r = std::fmod(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
template <typename T> static inline T ts_sign(T a) { return a != a ? a : T((a > 0) - (a < 0)); }

// float exp, log, erf, tanh written without branches or libm calls, so that loops over them
// vectorize (std::fmin, for one, does not); each is within a few ulp (tests compare with float64). double uses libm.
static inline float ts_bits_to_float(int32_t b) { float f; __builtin_memcpy(&f, &b, 4); return f; }
static inline int32_t ts_float_to_bits(float f) { int32_t b; __builtin_memcpy(&b, &f, 4); return b; }
// exp(x) / 2^n for n = round(x / ln 2): the polynomial on the reduced argument.
static inline float ts_exp_reduced(float x, float n) {
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f; p = p * r + 1.0f / 120.0f; p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
  return p;
}
// exp(x) where the caller knows it is a normal float (erf's and tanh's own arguments): ts_exp's
// value without its clamps and special cases, about half the instructions.
static inline float ts_exp_normal(float x) {
  const float n = std::nearbyint(x * 1.44269504088896341f);
  return ts_exp_reduced(x, n) * ts_bits_to_float((static_cast<int32_t>(n) + 127) << 23);
}
static inline float ts_exp(float x) {
  const float c = x > 88.72283935546875f ? 88.72283935546875f : (x < -103.972f ? -103.972f : x);
  const float n = std::nearbyint(c * 1.44269504088896341f);
  const float p = ts_exp_reduced(c, n);
  const int32_t k = static_cast<int32_t>(n), k1 = k / 2, k2 = k - k1;
  const float y = p * ts_bits_to_float((k1 + 127) << 23) * ts_bits_to_float((k2 + 127) << 23);
  return x != x ? x : (x > 88.72283935546875f ? std::numeric_limits<float>::infinity()
                                               : (x < -103.972f ? 0.0f : y));
}
static inline float ts_log(float x) {
  const bool tiny = x < 1.17549435e-38f;
  const int32_t bits = ts_float_to_bits(tiny ? x * 8388608.0f : x);
  int32_t e = ((bits >> 23) & 0xff) - 127 - (tiny ? 23 : 0);
  float m = ts_bits_to_float((bits & 0x7fffff) | 0x3f800000);
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  e = high ? e + 1 : e;
  const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  float p = 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f; p = p * s2 + 1.0f / 5.0f; p = p * s2 + 1.0f / 3.0f; p = p * s2 + 1.0f;
  const float fe = static_cast<float>(e);
  const float y = (2.0f * s * p + fe * 1.428606765330187e-06f) + fe * 0.693145751953125f;
  return x != x || x < 0.0f ? std::numeric_limits<float>::quiet_NaN()
       : (x == 0.0f ? -std::numeric_limits<float>::infinity()
       : (x == std::numeric_limits<float>::infinity() ? x : y));
}
static inline float ts_erf(float x) {
  const float a0 = std::fabs(x), a = a0 < 4.0f ? a0 : 4.0f, s = a * a;
  float p = 8.006874067938171e-05f;
  p = p * s - 0.0008053751099110395f; p = p * s + 0.0051929578653704895f;
  p = p * s - 0.026856069567831816f; p = p * s + 0.11283634634319561f;
  p = p * s - 0.37612629767094236f; p = p * s + 1.1283791662326472f;
  const float t = 1.0f / (1.0f + a);
  float q = -0.6359146455216156f;
  q = q * t + 1.3790293267302338f; q = q * t - 0.6918133874635842f; q = q * t - 0.5910075663770359f;
  q = q * t + 0.41516982254216866f; q = q * t + 0.537162695475491f; q = q * t + 0.5669869868250927f;
  q = q * t - 0.00011893522041267018f;
  const float r = a < 1.0f ? a * p : 1.0f - ts_exp_normal(-s) * q;  // -s in [-16, 0]
  return x != x ? x : (x < 0.0f ? -r : r);
}
static inline float ts_tanh(float x) {
  const float a = std::fabs(x), s = a * a;
  float p = 0.002170451203780738f;
  p = p * s - 0.00820522796191296f; p = p * s + 0.021710712350456837f;
  p = p * s - 0.053948237204539465f; p = p * s + 0.13333212480083542f;
  p = p * s - 0.33333330598014643f; p = p * s + 0.9999999998993891f;
  const float big = 1.0f - 2.0f / (ts_exp_normal(2.0f * (a < 20.0f ? a : 20.0f)) + 1.0f);
  const float r = a < 0.625f ? a * p : big;
  return x != x ? x : (x < 0.0f ? -r : r);
}
static inline double ts_exp(double x) { return std::exp(x); }
static inline double ts_log(double x) { return std::log(x); }
static inline double ts_erf(double x) { return std::erf(x); }
static inline double ts_tanh(double x) { return std::tanh(x); }
"""

_CALLS = {"exp": "ts_exp", "log": "ts_log", "log1p": "std::log1p", "expm1": "std::expm1",
          "sqrt": "std::sqrt", "sin": "std::sin", "cos": "std::cos", "tan": "std::tan",
          "tanh": "ts_tanh", "erf": "ts_erf", "asin": "std::asin", "acos": "std::acos",
          "atan": "std::atan", "sinh": "std::sinh", "cosh": "std::cosh", "asinh": "std::asinh",
          "acosh": "std::acosh", "atanh": "std::atanh", "log2": "std::log2", "exp2": "std::exp2",
          "floor": "std::floor", "ceil": "std::ceil", "round": "std::nearbyint", "trunc": "std::trunc",
          "is_finite": "std::isfinite", "pow": "std::pow", "atan2": "std::atan2", "fmod": "std::fmod",
          "remainder": "ts_remainder", "max": "ts_max", "min": "ts_min", "sign": "ts_sign"}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_COMPARE = {"EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


def c_type(dtype: DType) -> str:
    return C_TYPES[dtype]


def c_size(size) -> str:
    """A size in C: an int, or a symbolic size as an expression of the kernel's size arguments."""
    return f"({size})" if isinstance(size, Sym) else str(size)


def c_constant(value, dtype: DType) -> str:
    t = c_type(dtype)
    if isinstance(value, Sym):
        return f"static_cast<{t}>{c_size(value)}"
    if dtype == BOOL:
        return "true" if value else "false"
    if dtype.is_float:
        value = float(value)
        if math.isnan(value):
            return f"std::numeric_limits<{t}>::quiet_NaN()"
        if math.isinf(value):
            return f"{'-' if value < 0 else ''}std::numeric_limits<{t}>::infinity()"
        return f"static_cast<{t}>({value!r})"
    return f"static_cast<{t}>({int(value)}LL)"


class _Body:
    """Statements of one loop body, with each distinct subexpression computed once."""

    def __init__(self, lines: list[str], indent: str, counter, lanes: bool = False,
                 invariant: _Hoisted | None = None):
        self.lines, self.indent = lines, indent
        self.counter = counter  # shared by the kernel's bodies, so names never clash
        self.lanes = lanes  # locals are per-lane arrays
        self.names: dict = {}
        self.invariant = invariant  # where values that do not depend on the loop are computed

    def _emit(self, statement: str):
        self.lines.append(statement)

    def index(self, affine: Affine) -> str:
        parts = [c_size(affine.const)] if affine.const or not affine.terms else []
        for atom, coef in affine.terms:
            text = self._atom(atom)
            parts.append(text if coef == 1 else f"{c_size(coef)} * {text}")
        return "(" + " + ".join(parts) + ")"

    def _atom(self, atom) -> str:
        if isinstance(atom, Var):
            return atom.name
        # C's / and % truncate; index algebra floors. They agree for non-negative arguments.
        if isinstance(atom, (FloorDiv, Mod)):
            divisor = c_size(atom.divisor)
            non_negative = provably(lambda: atom.arg.bounds()[0] >= 0)
            if isinstance(atom, FloorDiv):
                return f"({self.index(atom.arg)} / {divisor})" if non_negative else \
                    f"ts_floordiv({self.index(atom.arg)}, {divisor})"
            return f"({self.index(atom.arg)} % {divisor})" if non_negative else \
                f"ts_mod({self.index(atom.arg)}, {divisor})"
        assert isinstance(atom, Indirect)
        return f"ts_index(static_cast<int64_t>({self.value(atom.value)}), {c_size(atom.extent)}, &error)"

    def value(self, expr, hoist: bool = True) -> str:
        """A C expression for `expr`; with `hoist`, bound to a named temporary first. Values under
        a select's branches are never hoisted: a branch not taken may index out of range."""
        if expr in self.names:
            return self.names[expr]
        if isinstance(expr, Const):
            return c_constant(expr.value, expr.dtype)
        if isinstance(expr, Local):
            return f"{expr.name}[lane]" if self.lanes else expr.name
        if hoist and self.invariant is not None and self.invariant.holds(expr):
            name = self.invariant.body.value(expr)
            self.names[expr] = name
            return name
        text = self._compute(expr, hoist)
        if not hoist:
            return text
        name = f"t{next(self.counter)}"
        self._emit(f"{self.indent}const {c_type(expr.dtype)} {name} = {text};")
        self.names[expr] = name
        return name

    def _compute(self, expr, hoist: bool) -> str:
        t = c_type(expr.dtype)
        if isinstance(expr, Load):
            return f"{expr.buffer}[{self.index(expr.index)}]"
        if isinstance(expr, IndexValue):
            return f"static_cast<{t}>({self.index(expr.index)})"
        assert isinstance(expr, Op), expr
        if expr.name in ("select", "guarded_select"):
            # A guarded select's branches may index out of range when not taken: never hoisted.
            # A plain select's both branches are valid, so both are computed (and blend in SIMD).
            branch_hoist = hoist and expr.name == "select"
            cond = self.value(expr.args[0], hoist)
            a, b = (self.value(x, hoist=branch_hoist) for x in expr.args[1:])
            return f"({cond} ? static_cast<{t}>({a}) : static_cast<{t}>({b}))"
        args = [self.value(a, hoist) for a in expr.args]
        return f"static_cast<{t}>({_op_text(expr, args)})"


class _Inserting(_Body):
    """A body whose statements go before a loop that has already been opened."""

    def __init__(self, lines, indent, counter, position: int):
        super().__init__(lines, indent, counter)
        self.position = position

    def _emit(self, statement: str):
        self.lines.insert(self.position, statement)
        self.position += 1


class _Hoisted:
    """Loop-invariant code motion for one stage: values that do not depend on the stage's inner
    loop variables are computed once before the loop (besides saving work, GCC does not vectorize
    some loops whose invariant selects it keeps inside). Only for loops that run at least once, so
    a hoisted load never reads a buffer the loop would not have read."""

    def __init__(self, body: _Body, inner: list[Var]):
        self.body = body
        self.inner = {v.name for v in inner}
        self.seen: dict = {}

    def holds(self, expr) -> bool:
        if expr not in self.seen:
            self.seen[expr] = not (_free_vars(expr) & self.inner)
        return self.seen[expr]


def _index_atoms(expr):
    """Every atom of every index `expr` reads through: loop variables, floor-divs/mods and the
    indices read from data (with the atoms of their own value expressions)."""
    if isinstance(expr, Op):
        for a in expr.args:
            yield from _index_atoms(a)
    elif isinstance(expr, (Load, IndexValue)):
        yield from _affine_atoms(expr.index)


def _affine_atoms(index: Affine):
    for atom, _ in index.terms:
        yield atom
        if isinstance(atom, (FloorDiv, Mod)):
            yield from _affine_atoms(atom.arg)
        elif isinstance(atom, Indirect):
            yield from _index_atoms(atom.value)


def _free_vars(expr) -> set[str]:
    """Names of the loop variables `expr` depends on (a Local is one value per outer point)."""
    return {atom.name for atom in _index_atoms(expr) if isinstance(atom, Var)}


def _op_text(expr: Op, args: list[str]) -> str:
    name, dtype = expr.name, expr.args[0].dtype
    if name == "compare":
        return f"{args[0]} {_COMPARE[expr.dir]} {args[1]}"
    if name == "convert":
        return f"({args[0]} != 0)" if expr.dtype == BOOL else args[0]
    if name in _INFIX:
        return f"{args[0]} {_INFIX[name]} {args[1]}"
    if name in ("and", "or", "xor"):
        op = {"and": "&&", "or": "||", "xor": "!="}[name] if dtype == BOOL else \
            {"and": "&", "or": "|", "xor": "^"}[name]
        return f"{args[0]} {op} {args[1]}"
    if name == "not":
        return f"!{args[0]}" if dtype == BOOL else f"~{args[0]}"
    if name == "neg":
        return f"-{args[0]}"
    if name == "abs":
        return f"std::abs({args[0]})" if dtype.is_float else f"({args[0]} < 0 ? -{args[0]} : {args[0]})"
    t = c_type(expr.dtype)
    if name == "sigmoid":
        return f"{t}(1) / ({t}(1) + ts_exp(-{args[0]}))"
    if name == "rsqrt":
        return f"{t}(1) / std::sqrt({args[0]})"
    if name == "reciprocal":
        return f"{t}(1) / {args[0]}"
    return f"{_CALLS[name]}({', '.join(args)})"


def _has_indirect(expr) -> bool:
    """Whether `expr` reads an index from data (whose range check keeps a loop from vectorizing)."""
    return any(isinstance(atom, Indirect) for atom in _index_atoms(expr))


_REDUCE_INIT = {"sum": "0", "prod": "1", "any": "false", "all": "true"}
_REDUCE_CLAUSE = {"sum": "+", "prod": "*", "any": "||", "all": "&&", "max": "max", "min": "min"}
LANES = 64  # columns one thread handles at a time in lane mode (kernel.lanes)


class _Emitter:
    """Emits one kernel's stages. In lane mode the kernel's last outer variable runs innermost, as
    `lane` over a chunk of LANES columns, so reductions over leading dimensions (bias gradients)
    read memory contiguously and vectorize; accumulators and locals are then per-lane arrays."""

    def __init__(self, lines: list[str], lane_var: Var | None, check_numerics: bool = False):
        self.lines, self.lane_var = lines, lane_var
        self.counter = itertools.count()
        self.check_numerics = check_numerics

    def _body(self, indent: str, before: int, outer_indent: str, inner: list[Var]) -> _Body:
        """The body of a loop nest over `inner` opened at line `before`; invariant values go there
        (not in lane mode, where the innermost loop is an outer variable)."""
        invariant = None
        if self.lane_var is None and inner and all(provably(lambda: v.extent > 0) for v in inner):
            invariant = _Hoisted(_Inserting(self.lines, outer_indent, self.counter, before), inner)
        return _Body(self.lines, indent, self.counter, lanes=self.lane_var is not None,
                     invariant=invariant)

    def _open(self, vars, indent: str, simd_clause: str | None) -> str:
        """Nested loops over `vars` (and the lane loop, innermost, in lane mode); the innermost
        gets `#pragma omp simd` plus `simd_clause` unless that is None."""
        loops = list(vars)
        for k, v in enumerate(loops):
            if k == len(loops) - 1 and simd_clause is not None and self.lane_var is None:
                self.lines.append(f"{indent}#pragma omp simd{simd_clause}")
            self.lines.append(f"{indent}for (int64_t {v.name} = 0; {v.name} < {c_size(v.extent)}; ++{v.name}) {{")
            indent += "  "
        if self.lane_var is not None:
            if simd_clause is not None:
                clause = " reduction(|:nonfinite)" if "nonfinite" in simd_clause else ""
                self.lines.append(f"{indent}#pragma omp simd{clause}")
            self.lines.append(f"{indent}for (int64_t lane = 0; lane < width; ++lane) {{")
            indent += "  "
            self.lines.append(f"{indent}const int64_t {self.lane_var.name} = first + lane;")
        return indent

    def _close(self, vars, indent: str) -> str:
        for _ in range(len(vars) + (self.lane_var is not None)):
            indent = indent[:-2]
            self.lines.append(f"{indent}}}")
        return indent

    def _declare(self, indent: str, t: str, name: str, init: str):
        if self.lane_var is None:
            self.lines.append(f"{indent}{t} {name} = {init};")
        else:
            self.lines.append(f"{indent}{t} {name}[{LANES}];")
            self.lines.append(f"{indent}for (int64_t lane = 0; lane < width; ++lane) {name}[lane] = {init};")

    def _at(self, name: str) -> str:
        return name if self.lane_var is None else f"{name}[lane]"

    def reduce(self, stage: Reduce, indent: str):
        t, acc, kind = c_type(stage.dtype), f"acc_{stage.name}", stage.kind
        floating = stage.dtype.is_float
        if kind in ("argmax", "argmin"):
            value_t, best = c_type(stage.value.dtype), f"best_{stage.name}"
            self._declare(indent, value_t, best, f"{value_t}(0)")
            self._declare(indent, "int64_t", acc, "0")
            before = len(self.lines)
            inner = self._open(stage.inner, indent, None)
            v = self._body(inner, before, indent, stage.inner).value(stage.value)
            (var,) = stage.inner
            b, a = self._at(best), self._at(acc)
            better = ">" if kind == "argmax" else "<"
            self.lines.append(f"{inner}if ({var.name} == 0 || (!({b} != {b}) && ({v} {better} {b} || {v} != {v}))) "
                              f"{{ {b} = {v}; {a} = {var.name}; }}")
            self._close(stage.inner, inner)
            self._declare(indent, "int64_t", stage.name, self._at(acc))
            return
        if kind in _REDUCE_INIT:
            init = _REDUCE_INIT[kind]
        elif floating:
            init = f"{'-' if kind == 'max' else ''}std::numeric_limits<{t}>::infinity()"
        else:
            init = f"std::numeric_limits<{t}>::{'lowest' if kind == 'max' else 'max'}()"
        self._declare(indent, t, acc, init)
        nan = f"nan_{stage.name}"
        track_nan = kind in ("max", "min") and floating
        clause = "" if self.lane_var is not None else f" reduction({_REDUCE_CLAUSE[kind]}:{acc})"
        if track_nan:
            self._declare(indent, "int32_t", nan, "0")  # a count: bool reductions do not vectorize
            clause += "" if self.lane_var is not None else f" reduction(+:{nan})"
        before = len(self.lines)
        inner = self._open(stage.inner, indent, None if _has_indirect(stage.value) else clause)
        v = self._body(inner, before, indent, stage.inner).value(stage.value)
        a = self._at(acc)
        update = {"sum": f"{a} += {v};", "prod": f"{a} *= {v};", "any": f"{a} = {a} || {v};",
                  "all": f"{a} = {a} && {v};", "max": f"{a} = std::max({a}, {v});",
                  "min": f"{a} = std::min({a}, {v});"}[kind]
        if track_nan:
            update += f" {self._at(nan)} += ({v} != {v});"
        self.lines.append(f"{inner}{update}")
        self._close(stage.inner, inner)
        result = a = self._at(acc)
        if track_nan:
            result = f"({self._at(nan)} ? std::numeric_limits<{t}>::quiet_NaN() : {a})"
        self._declare(indent, t, stage.name, result)

    def store(self, stage: Store, dtype: DType, indent: str):
        check = self.check_numerics and dtype.is_float
        before = len(self.lines)
        clause = " reduction(|:nonfinite)" if check else ""
        inner = self._open(stage.inner, indent, None if _has_indirect(stage.value) else clause)
        body = self._body(inner, before, indent, stage.inner)
        v = body.value(stage.value)
        t = c_type(dtype)
        if not check:
            self.lines.append(f"{inner}{stage.buffer}[{body.index(stage.index)}] = static_cast<{t}>({v});")
        else:  # NaN and +-Inf both fail |s| < inf; an int OR-reduction keeps the loop vectorized
            s = f"s{next(self.counter)}"
            self.lines.append(f"{inner}const {t} {s} = static_cast<{t}>({v});")
            self.lines.append(f"{inner}{stage.buffer}[{body.index(stage.index)}] = {s};")
            self.lines.append(f"{inner}nonfinite |= !(std::abs({s}) < std::numeric_limits<{t}>::infinity());")
        self._close(stage.inner, inner)


def emit_kernel(kernel: Kernel, buffer_dtypes: dict[str, DType], check_numerics: bool = False,
                sizes: tuple = ()) -> str:
    """One kernel; `sizes` names the size symbols it takes (the graph's, when symbolic)."""
    kernel = split_inner_loops(kernel)
    params = [f"void* p_{b}" for b in [*kernel.outputs, *kernel.inputs]] + [f"int64_t {n}" for n in sizes]
    lines = [f'extern "C" int {kernel.name}({", ".join(params)}) {{']
    for b in kernel.outputs:
        t = c_type(buffer_dtypes[b])
        lines.append(f"  {t}* __restrict__ {b} = static_cast<{t}*>(p_{b});")
    for b in kernel.inputs:
        t = c_type(buffer_dtypes[b])
        lines.append(f"  const {t}* __restrict__ {b} = static_cast<const {t}*>(p_{b});")
    lines.append("  int error = 0;")
    if check_numerics:
        lines.append("  int nonfinite = 0;")
    # Lane mode needs the chunk count of the last dim, which a symbolic size does not give.
    lane_var = kernel.outer[-1] if kernel.lanes and kernel.outer and \
        isinstance(kernel.outer[-1].extent, int) else None
    # The parallel loop runs over the outer points (in lane mode: over chunks of the last one).
    extents = [v.extent for v in kernel.outer]
    if lane_var is not None:
        extents[-1] = -(-lane_var.extent // LANES)
    outer = 1
    for e in extents:
        outer *= e
    indent = "  "
    if kernel.outer:
        if not provably(lambda: outer <= 1):
            reduced = "error,nonfinite" if check_numerics else "error"
            lines.append(f"  #pragma omp parallel for reduction(|:{reduced}) schedule(static) "
                         f"if({c_size(kernel.work)} > {PARALLEL_THRESHOLD})")
        lines.append(f"  for (int64_t o = 0; o < {c_size(outer)}; ++o) {{")
        indent = "    "
        stride = 1
        for v, e in reversed(list(zip(kernel.outer, extents))):
            name = "chunk" if v is lane_var else v.name
            lines.append(f"{indent}const int64_t {name} = (o / {c_size(stride)}) % {c_size(e)};")
            stride *= e
        if lane_var is not None:
            lines.append(f"{indent}const int64_t first = chunk * {LANES};")
            lines.append(f"{indent}const int64_t width = std::min<int64_t>({LANES}, {lane_var.extent} - first);")
    emitter = _Emitter(lines, lane_var, check_numerics)
    for stage in kernel.stages:
        if isinstance(stage, Reduce):
            emitter.reduce(stage, indent)
        else:
            emitter.store(stage, buffer_dtypes[stage.buffer], indent)
    if kernel.outer:
        lines.append("  }")
    result = f"error | (nonfinite ? {ERROR_NONFINITE} : 0)" if check_numerics else "error"
    lines += [f"  return {result};", "}"]
    return "\n".join(lines)


def emit_module(kernels: list[Kernel], buffer_dtypes: dict[str, DType], check_numerics: bool = False,
                sizes: tuple = ()) -> str:
    """The C++ source of `kernels`; with `check_numerics`, each kernel also reports stored NaN/Inf;
    each takes the values of the size symbols `sizes`."""
    return PRELUDE + "\n\n".join(emit_kernel(k, buffer_dtypes, check_numerics, sizes)
                                   for k in kernels) + "\n"

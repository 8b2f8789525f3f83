"""Shape and layout ONNX ops: making, reshaping, slicing, gathering, scattering and padding
tensors (resizing is in resize.py)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...errors import OnnxModelError, OnnxUnsupportedError
from ..dtypes import torch_dtype
from .registry import computable, floats, ints, is_constant, op, scalar, scope


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _wrap(indices: torch.Tensor, n) -> torch.Tensor:
    """Indices as int64, negative ones counted from the end of a dimension of size n."""
    indices = computable(indices).long()
    return torch.where(indices < 0, indices + n, indices)


def _linear(indices: torch.Tensor, dims) -> torch.Tensor:
    """The flat positions, in a tensor of shape `dims`, of the index tuples along indices' last
    axis."""
    linear = torch.zeros(indices.shape[:-1], dtype=torch.long, device=indices.device)
    for j, n in enumerate(dims):
        linear = linear * n + _wrap(indices[..., j], n)
    return linear


def _const(values, like: torch.Tensor, dtype=torch.long) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=like.device)


# --- making tensors ---------------------------------------------------------------------------

_CONSTANT_ATTRS = {"value": None, "value_float": torch.float32, "value_floats": torch.float32,
                   "value_int": torch.int64, "value_ints": torch.int64}


@op("Constant")
def constant(node):
    for name, dtype in _CONSTANT_ATTRS.items():
        value = node.attr(name)
        if value is not None:
            return value if dtype is None else torch.tensor(value, dtype=dtype,
                                                            device=scope().device)
    raise OnnxUnsupportedError(f"{node.where()}: constants of attributes {sorted(node.attrs)} "
                               "are not supported")


@op("ConstantOfShape")
def constant_of_shape(node, shape):
    value = node.attr("value")
    if value is None:
        value = torch.zeros(1)
    sizes = ints(shape, "ConstantOfShape's shape")
    fill = value.tolist()  # an attribute: no torch op, which tracing would record
    fill = fill[0] if isinstance(fill, list) else fill
    return torch.full(sizes, fill, dtype=value.dtype, device=shape.device)


@op("EyeLike")
def eye_like(node, x):
    dtype = node.attr("dtype")
    rows, cols = x.shape
    diagonal = (torch.arange(cols, device=x.device)
                - torch.arange(rows, device=x.device).unsqueeze(1)) == node.attr("k", 0)
    return diagonal.to(x.dtype if dtype is None else torch_dtype(dtype))


@op("Range")
def range_(node, start, limit, delta):
    first, last, step = (scalar(t, "Range's bounds") for t in (start, limit, delta))
    if start.is_floating_point():
        count, compute = math.ceil((last - first) / step), torch.float64
    else:
        count, compute = -((first - last) // step), torch.int64
    steps = torch.arange(max(count, 0), dtype=compute, device=start.device)
    return (steps * step + first).to(start.dtype)


# --- shapes -----------------------------------------------------------------------------------

@op("Shape")
def shape(node, x):
    dims = list(x.shape)[node.attr("start", 0):node.attr("end", x.dim())]
    return torch.tensor(dims, dtype=torch.int64, device=x.device)


@op("Size")
def size(node, x):
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


@op("Reshape")
def reshape(node, x, shape):
    sizes = ints(shape, "Reshape's shape")
    if not node.attr("allowzero", 0):
        sizes = [x.shape[i] if s == 0 else s for i, s in enumerate(sizes)]
    return x.reshape(sizes)


@op("Flatten")
def flatten(node, x):
    axis = _axis(node.attr("axis", 1), x.dim())
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _axes_of(node, axes, what: str):
    """Axes given by an attribute before opset 13, by an input from then on."""
    return node.attr("axes") if node.opset < 13 else ints(axes, what)


@op("Squeeze")
def squeeze(node, x, axes=None):
    axes = _axes_of(node, axes, "Squeeze's axes")
    if axes:
        drop = {_axis(a, x.dim()) for a in axes}
    else:
        drop = {i for i, n in enumerate(x.shape) if n == 1}
    return x.reshape([n for i, n in enumerate(x.shape) if i not in drop])


@op("Unsqueeze")
def unsqueeze(node, x, axes=None):
    axes = _axes_of(node, axes, "Unsqueeze's axes")
    rank = x.dim() + len(axes)
    sizes = list(x.shape)
    for axis in sorted(_axis(a, rank) for a in axes):
        sizes.insert(axis, 1)
    return x.reshape(sizes)


@op("Transpose")
def transpose(node, x):
    perm = node.attr("perm") or list(reversed(range(x.dim())))
    return x.permute(perm)


@op("Expand")
def expand(node, x, shape):
    sizes = torch.broadcast_shapes(x.shape, tuple(ints(shape, "Expand's shape")))
    return x.expand(sizes)


@op("Tile")
def tile(node, x, repeats):
    return x.repeat(ints(repeats, "Tile's repeats"))


@op("DepthToSpace")
def depth_to_space(node, x):
    b, c, h, w = x.shape
    n = node.attr("blocksize")
    if node.attr("mode", "DCR") == "DCR":
        blocks = x.reshape(b, n, n, c // (n * n), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        blocks = x.reshape(b, c // (n * n), n, n, h, w).permute(0, 1, 4, 2, 5, 3)
    return blocks.reshape(b, c // (n * n), h * n, w * n)


@op("SpaceToDepth")
def space_to_depth(node, x):
    b, c, h, w = x.shape
    n = node.attr("blocksize")
    blocks = x.reshape(b, c, h // n, n, w // n, n)
    if node.attr("mode", "DCR") == "DCR":
        blocks = blocks.permute(0, 3, 5, 1, 2, 4)
    else:
        blocks = blocks.permute(0, 1, 3, 5, 2, 4)
    return blocks.reshape(b, c * n * n, h // n, w // n)


# --- joining, splitting, slicing --------------------------------------------------------------

@op("Concat")
def concat(node, *inputs):
    return torch.cat(inputs, dim=_axis(node.attr("axis"), inputs[0].dim()))


@op("Split")
def split(node, x, split=None):
    axis = _axis(node.attr("axis", 0), x.dim())
    sizes = node.attr("split") if node.opset < 13 else ints(split, "Split's sizes")
    if not sizes:
        count, n = node.attr("num_outputs", len(node.outputs)), x.shape[axis]
        part = -(-n // count)
        sizes = [part] * (count - 1) + [n - part * (count - 1)]
    return torch.split(x, list(sizes), dim=axis)


def _slice_axis(x: torch.Tensor, axis: int, start: int, end: int, step: int) -> torch.Tensor:
    """x[start:end:step] along `axis`, with numpy's clamping of start and end."""
    picked = range(*slice(start, end, step).indices(x.shape[axis]))
    if not picked:
        return x.narrow(axis, 0, 0)
    first, last = picked[0], picked[-1]
    if step < 0:  # the same elements, counted from the end of the flipped axis
        end = x.shape[axis] - 1
        x, first, last, step = x.flip(axis), end - first, end - last, -step
    return x[(slice(None),) * axis + (slice(first, last + 1, step),)]


@op("Slice")
def slice_(node, x, starts=None, ends=None, axes=None, steps=None):
    if node.opset < 10:
        starts, ends, axes, steps = (node.attr("starts"), node.attr("ends"),
                                     node.attr("axes"), None)
    else:
        starts, ends = ints(starts, "Slice's starts"), ints(ends, "Slice's ends")
        axes, steps = ints(axes, "Slice's axes"), ints(steps, "Slice's steps")
    axes = axes or range(len(starts))
    steps = steps or [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        x = _slice_axis(x, _axis(axis, x.dim()), start, end, step)
    return x


@op("Compress")
def compress(node, x, condition):
    """The slices of x along `axis` (of flat x without one) where condition holds; a shorter
    condition drops the slices past its end. Reads condition's values (eager if not constant)."""
    axis = node.attr("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _axis(axis, x.dim())
    keep = [i for i, c in enumerate(ints(condition, "Compress's condition")) if c]
    return x.index_select(axis, _const(keep, x))


@op("NonZero", data_dependent=True)
def non_zero(node, x):
    if scope().tracing:  # x is a constant: its positions are found without a value-shaped op
        flat = [i for i, v in enumerate(floats(x, "NonZero's input")) if v]
        dims = [(n, math.prod(x.shape[d + 1:])) for d, n in enumerate(x.shape)]
        coordinates = [[i // step % n for i in flat] for n, step in dims]
        return _const(coordinates, x).reshape(x.dim(), len(flat))
    return torch.nonzero(x).t()


@op("Unique", data_dependent=True)
def unique(node, x):
    """Unique values (slices along `axis`), the index of each one's first occurrence, the
    inverse indices and the counts; in order of first occurrence unless `sorted`."""
    axis = node.attr("axis")
    data = computable(x.reshape(-1) if axis is None else x)
    axis = 0 if axis is None else _axis(axis, x.dim())
    values, inverse, counts = torch.unique(data, sorted=True, return_inverse=True,
                                           return_counts=True, dim=axis)
    n = data.shape[axis]
    first = torch.full((values.shape[axis],), n, dtype=torch.long, device=x.device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=x.device), "amin")
    if not node.attr("sorted", 1):
        order = torch.argsort(first)
        values, first, counts = values.index_select(axis, order), first[order], counts[order]
        inverse = torch.argsort(order)[inverse]
    return values.to(x.dtype), first, inverse.reshape(-1), counts


# --- gathering and scattering -----------------------------------------------------------------

@op("Gather")
def gather(node, x, indices):
    axis = _axis(node.attr("axis", 0), x.dim())
    indices = _wrap(indices, x.shape[axis])
    picked = x.index_select(axis, indices.reshape(-1))
    return picked.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1:])


@op("GatherElements")
def gather_elements(node, x, indices):
    axis = _axis(node.attr("axis", 0), x.dim())
    return computable(x).gather(axis, _wrap(indices, x.shape[axis])).to(x.dtype)


@op("GatherND")
def gather_nd(node, x, indices):
    """Slices of x at the index tuples of indices' last axis, the first `batch_dims` axes of
    x and indices being matched batch axes."""
    b, k = node.attr("batch_dims", 0), indices.shape[-1]
    batches, inner, rest = math.prod(x.shape[:b]), x.shape[b:b + k], x.shape[b + k:]
    per_batch = math.prod(inner)
    linear = _linear(indices, inner).reshape(batches, -1)
    linear = linear + torch.arange(batches, device=x.device).unsqueeze(1) * per_batch
    picked = x.reshape((batches * per_batch,) + rest).index_select(0, linear.reshape(-1))
    return picked.reshape(indices.shape[:-1] + rest)


_SCATTER_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter(node, data, axis, index, updates):
    dtype, data, updates = data.dtype, computable(data), computable(updates)
    reduction = node.attr("reduction", "none")
    if reduction == "none":
        return data.scatter(axis, index, updates).to(dtype)
    return data.scatter_reduce(axis, index, updates, _SCATTER_REDUCE[reduction]).to(dtype)


@op("ScatterElements", "Scatter")
def scatter_elements(node, x, indices, updates):
    axis = _axis(node.attr("axis", 0), x.dim())
    return _scatter(node, x, axis, _wrap(indices, x.shape[axis]), updates)


@op("ScatterND")
def scatter_nd(node, x, indices, updates):
    """x with the slices at the index tuples of indices' last axis replaced by (or combined
    with, by `reduction`) updates."""
    k = indices.shape[-1]
    inner, rest = x.shape[:k], x.shape[k:]
    linear = _linear(indices, inner).reshape(-1)
    updates = updates.reshape((linear.shape[0],) + rest)
    index = linear.reshape((-1,) + (1,) * len(rest)).expand(updates.shape)
    flat = _scatter(node, x.reshape((math.prod(inner),) + rest), 0, index, updates)
    return flat.reshape(x.shape)


@op("ReverseSequence")
def reverse_sequence(node, x, sequence_lens):
    """Each batch entry's first sequence_lens[b] time steps reversed."""
    batch_axis, time_axis = node.attr("batch_axis", 1), node.attr("time_axis", 0)
    steps = torch.arange(x.shape[time_axis], device=x.device).unsqueeze(1)
    lengths = sequence_lens.long().unsqueeze(0)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)  # [time, batch]
    if batch_axis < time_axis:
        source = source.t()
    sizes = [1] * x.dim()
    sizes[time_axis], sizes[batch_axis] = x.shape[time_axis], x.shape[batch_axis]
    index = source.reshape(sizes).expand(x.shape)
    return computable(x).gather(time_axis, index).to(x.dtype)


@op("OneHot")
def one_hot(node, indices, depth, values):
    depth = int(scalar(depth, "OneHot's depth"))
    axis = _axis(node.attr("axis", -1), indices.dim() + 1)
    indices = computable(indices)
    indices = torch.where(indices < 0, indices + depth, indices).unsqueeze(axis)
    classes = torch.arange(depth, device=indices.device).to(indices.dtype)
    hot = indices == classes.reshape((depth,) + (1,) * (indices.dim() - axis - 1))
    off, on = computable(values)
    return torch.where(hot, on, off).to(values.dtype)


@op("Trilu")
def trilu(node, x, k=None):
    k = 0 if k is None else int(scalar(k, "Trilu's k"))
    data = computable(x)
    return (data.triu(k) if node.attr("upper", 1) else data.tril(k)).to(x.dtype)


@op("TopK")
def top_k(node, x, k=None):
    """The k largest (smallest) values along `axis` in order, ties broken by lower index."""
    k = node.attr("k") if node.opset < 10 else int(scalar(k, "TopK's k"))
    axis = _axis(node.attr("axis", -1), x.dim())
    values, indices = torch.sort(computable(x), dim=axis, descending=bool(node.attr("largest", 1)),
                                 stable=True)
    return values.narrow(axis, 0, k).to(x.dtype), indices.narrow(axis, 0, k)


# --- padding ----------------------------------------------------------------------------------

def _pad_source(mode: str, n: int, before: int, after: int) -> list[int]:
    """For each position of an axis padded by `mode`, the input position it copies."""
    period = 2 * (n - 1)
    source = []
    for i in range(-before, n + after):
        if mode == "edge":
            source.append(min(max(i, 0), n - 1))
        elif mode == "wrap":
            source.append(i % n)
        else:  # reflect, without repeating the edge
            j = i % period if period else 0
            source.append(period - j if j >= n else j)
    return source


def _pad_constant(x: torch.Tensor, widths: list[int], value) -> torch.Tensor:
    """x padded with `value` (None, a number or a one-value tensor); widths as F.pad takes them."""
    if isinstance(value, torch.Tensor) and not is_constant(value):
        inside = F.pad(torch.ones_like(x, dtype=torch.bool), widths, value=False)
        return torch.where(inside, F.pad(x, widths), value.reshape(()).to(x.dtype))
    if isinstance(value, torch.Tensor):
        value = scalar(value, "Pad's constant_value")
    return F.pad(x, widths, value=value or 0)


@op("Pad")
def pad(node, x, pads=None, constant_value=None, axes=None):
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        pads, constant_value = node.attr("pads"), node.attr("value", 0.0)
    else:
        pads = ints(pads, "Pad's pads")
    axes = [_axis(a, x.dim()) for a in ints(axes, "Pad's axes") or range(x.dim())]
    before = dict.fromkeys(range(x.dim()), 0) | dict(zip(axes, pads))
    after = dict.fromkeys(range(x.dim()), 0) | dict(zip(axes, pads[len(axes):]))
    if mode == "constant":
        widths = [w for axis in reversed(range(x.dim())) for w in (before[axis], after[axis])]
        return _pad_constant(x, widths, constant_value)
    if mode not in ("edge", "reflect", "wrap"):
        raise OnnxModelError(f"{node.where()}: unknown mode {mode!r}")
    for axis in axes:
        source = _pad_source(mode, x.shape[axis], before[axis], after[axis])
        x = x.index_select(axis, _const(source, x))
    return x

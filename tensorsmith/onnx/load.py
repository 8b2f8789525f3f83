"""Loading an ONNX model file as data, never as code.

A model is parsed as a protobuf message and nothing else: nothing in it is imported, unpickled or
run. Ops of custom domains are never looked up as Python code (tensorsmith has no plugin
mechanism: an op outside the op table is refused, or run by onnx's reference implementation when
onnx defines it), and function protos are graphs of ONNX ops, not code.

The checks here turn a malformed or hostile file into an `OnnxModelError` naming the file, the
tensor and the problem, before any large allocation:

- a missing path, a directory, a device or a FIFO; a file over protobuf's 2 GiB limit (never more
  than the file's own size is read); a file that is not an ONNX protobuf, or is truncated;
- negative dims, and tensors whose dims x element size disagree with the data they hold;
- external data whose location is absolute, escapes the model's folder (`..`, a symlink out of it)
  or is not a regular file, and offsets or lengths outside the file or disagreeing with the
  tensor's dims.

External data is read here rather than by `onnx.external_data_helper`: these rules then hold
whatever onnx version is installed (its own checks differ between versions), the length is checked
against the tensor's dims before the read, and errors name the file, tensor and location. A
symlink is followed only when its target lies inside the model's folder, or inside the folder of
the model file's own target (the layout of the Hugging Face hub cache, where both are symlinks
into one blob folder; onnx's helper refuses every symlink).
"""
from __future__ import annotations

import ntpath
import os
import stat
from contextlib import contextmanager

import onnx

from ..errors import OnnxModelError

PROTOBUF_LIMIT = 2**31  # protobuf cannot parse a message of 2 GiB or more
MAX_TENSOR_BYTES = 2**40  # far above any real weight: dims beyond it are absurd

_T = onnx.TensorProto
_A = onnx.AttributeProto
# Bits per element of the ONNX element types of fixed width (getattr: newer onnx has more).
_BITS = {getattr(_T, name): bits for name, bits in [
    ("FLOAT", 32), ("UINT8", 8), ("INT8", 8), ("UINT16", 16), ("INT16", 16), ("INT32", 32),
    ("INT64", 64), ("BOOL", 8), ("FLOAT16", 16), ("DOUBLE", 64), ("UINT32", 32), ("UINT64", 64),
    ("COMPLEX64", 64), ("COMPLEX128", 128), ("BFLOAT16", 16), ("FLOAT8E4M3FN", 8),
    ("FLOAT8E4M3FNUZ", 8), ("FLOAT8E5M2", 8), ("FLOAT8E5M2FNUZ", 8), ("UINT4", 4), ("INT4", 4),
    ("FLOAT4E2M1", 4), ("FLOAT8E8M0", 8), ("UINT2", 2), ("INT2", 2), ("FLOAT6E2M3", 6),
    ("FLOAT6E3M2", 6)] if hasattr(_T, name)}
# Values per element in the typed fields (float_data, int32_data, ...), where that is fixed
# (4-bit and 2-bit types are packed several to a value).
_TYPED_VALUES = {t: 1 for t in _BITS if _BITS[t] >= 8} | {
    _T.COMPLEX64: 2, _T.COMPLEX128: 2, _T.STRING: 1}
# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
_OPEN_FLAGS = os.O_RDONLY | sum(getattr(os, f, 0) for f in ("O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY"))


def load_model(model, base_dir: str | os.PathLike | None = None) -> onnx.ModelProto:
    """`model` (a path, bytes or a ModelProto) as a checked ModelProto with its external data
    loaded. External data is looked up in `base_dir`, by default the model file's folder; a model
    given as bytes or a ModelProto needs `base_dir` if it has external data. A ModelProto passed in
    is not modified."""
    if isinstance(model, onnx.ModelProto):
        proto, source = model, "<ModelProto>"
    elif isinstance(model, (bytes, bytearray, memoryview)):
        source = "<bytes>"
        if len(model) >= PROTOBUF_LIMIT:
            raise OnnxModelError(f"{source}: {len(model)} bytes, over protobuf's 2 GiB limit")
        proto = _parse(bytes(model), source)
    elif isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        proto = _parse(_read_model_file(source), source)
        if base_dir is None:
            base_dir = os.path.dirname(os.path.abspath(source))
    else:
        raise TypeError(f"an ONNX model is a path, bytes or an onnx.ModelProto, not "
                        f"{type(model).__name__}")
    tensors = list(_all_tensors(proto))
    for tensor, where in tensors:
        _check_dims(tensor, where, source)
    if any(_is_external(t) for t, _ in tensors):
        if base_dir is None:
            tensor, where = next((t, w) for t, w in tensors if _is_external(t))
            raise OnnxModelError(
                f"{source}: {where} has its data in an external file "
                f"{_entries(tensor, where, source).get('location', '')!r}; a model given as "
                "bytes or a ModelProto needs base_dir= to name the folder of its external data")
        if proto is model:
            proto = onnx.ModelProto()
            proto.CopyFrom(model)
            tensors = list(_all_tensors(proto))
        roots = _allowed_roots(os.fspath(base_dir), model)
        for tensor, where in tensors:
            if _is_external(tensor):
                _load_external(tensor, where, source, roots)
    for tensor, where in tensors:
        _check_data(tensor, where, source)
    return proto


def _read_model_file(path: str) -> bytes:
    """The bytes of the model file at `path`: a regular file under the size limit, read up to its
    size as found when opened."""
    with _open_regular(path, lambda problem: f"{path}: {problem}") as (f, size):
        if size >= PROTOBUF_LIMIT:
            raise OnnxModelError(f"{path}: {size} bytes, over protobuf's 2 GiB limit (a larger "
                                 "model keeps its weights in external data files)")
        return f.read(size)


@contextmanager
def _open_regular(path: str, message, follow_symlinks: bool = True):
    """`with _open_regular(path, message) as (file, size)`: `path` opened for reading, refused
    with OnnxModelError(message(problem)) unless it is a regular file. Opening never blocks (a
    FIFO opens at once, then is refused)."""
    flags = _OPEN_FLAGS | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise OnnxModelError(message("no such file")) from None
    except IsADirectoryError:
        raise OnnxModelError(message("is a directory, not a file")) from None
    except (OSError, ValueError) as e:
        raise OnnxModelError(message(f"cannot be opened ({e})")) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OnnxModelError(message("is a directory, not a file" if stat.S_ISDIR(info.st_mode)
                                     else "is not a regular file (a device, FIFO or socket)"))
    with os.fdopen(fd, "rb") as f:
        yield f, info.st_size


def _parse(data: bytes, source: str) -> onnx.ModelProto:
    if not data:
        raise OnnxModelError(f"{source} is empty, not an ONNX model")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise OnnxModelError(f"{source} is not a valid ONNX model (truncated, or not an ONNX "
                             f"protobuf): {e}") from None
    if not proto.HasField("graph"):
        raise OnnxModelError(f"{source} is not an ONNX model: it has no graph")
    return proto


def _all_tensors(model: onnx.ModelProto):
    """(tensor, how errors name it) for every TensorProto of the model: initializers, sparse
    initializers, attribute values, in the main graph, subgraphs, functions and training graphs."""
    graphs = [model.graph]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    for graph in graphs:
        yield from _graph_tensors(graph)
    for function in model.functions:
        yield from _nodes_tensors(function.node)


def _graph_tensors(graph: onnx.GraphProto):
    for tensor in graph.initializer:
        yield tensor, f"initializer {tensor.name!r}"
    for sparse in graph.sparse_initializer:
        yield from _sparse_tensors(sparse, f"sparse initializer {sparse.values.name!r}")
    yield from _nodes_tensors(graph.node)


def _nodes_tensors(nodes):
    for node in nodes:
        for a in node.attribute:
            name = node.name or (node.output[0] if node.output else "")
            where = f"attribute {a.name!r} of {node.op_type} node {name!r}"
            if a.type == _A.TENSOR:
                yield a.t, f"tensor {a.t.name!r} ({where})" if a.t.name else where
            elif a.type == _A.TENSORS:
                yield from ((t, f"tensor {i} of {where}") for i, t in enumerate(a.tensors))
            elif a.type == _A.SPARSE_TENSOR:
                yield from _sparse_tensors(a.sparse_tensor, where)
            elif a.type == _A.SPARSE_TENSORS:
                for i, s in enumerate(a.sparse_tensors):
                    yield from _sparse_tensors(s, f"sparse tensor {i} of {where}")
            elif a.type == _A.GRAPH:
                yield from _graph_tensors(a.g)
            elif a.type == _A.GRAPHS:
                for g in a.graphs:
                    yield from _graph_tensors(g)


def _sparse_tensors(sparse: onnx.SparseTensorProto, where: str):
    yield sparse.values, f"values of {where}"
    yield sparse.indices, f"indices of {where}"


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == _T.EXTERNAL


def _check_dims(tensor: onnx.TensorProto, where: str, source: str) -> None:
    """Refuses negative dims, and dims whose size is absurd (Python integers, so no overflow;
    zero dims are checked first, since they make any other dim harmless)."""
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxModelError(f"{source}: {where} has a negative dimension in its dims {dims}")
    if 0 in dims:
        return
    bits, size = _BITS.get(tensor.data_type, 8), 1
    for d in dims:
        size *= d
        if size * bits > 8 * MAX_TENSOR_BYTES:
            raise OnnxModelError(f"{source}: {where} has absurd dims {dims}: over "
                                 f"{MAX_TENSOR_BYTES} bytes")


def _nbytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes of the tensor's data in raw form, None for types of no fixed width (strings)."""
    bits = _BITS.get(tensor.data_type)
    if bits is None:
        return None
    count = 1
    for d in tensor.dims:
        count *= d
    return (count * bits + 7) // 8


def _typed_values(tensor: onnx.TensorProto) -> int:
    return (len(tensor.float_data) + len(tensor.int32_data) + len(tensor.int64_data)
            + len(tensor.double_data) + len(tensor.uint64_data) + len(tensor.string_data))


def _check_data(tensor: onnx.TensorProto, where: str, source: str) -> None:
    """Refuses data that disagrees with the tensor's dims and element type."""
    dims, expected = list(tensor.dims), _nbytes(tensor)
    if tensor.HasField("raw_data"):
        if expected is not None and len(tensor.raw_data) != expected:
            raise OnnxModelError(f"{source}: {where} has dims {dims}, {expected} bytes, but its "
                                 f"raw_data holds {len(tensor.raw_data)} bytes")
        return
    per_element = _TYPED_VALUES.get(tensor.data_type)
    if per_element is not None:
        count = 1
        for d in dims:
            count *= d
        if _typed_values(tensor) != count * per_element:
            raise OnnxModelError(f"{source}: {where} has dims {dims}, {count} elements, but holds "
                                 f"{_typed_values(tensor)} values")


def _entries(tensor: onnx.TensorProto, where: str, source: str) -> dict[str, str]:
    entries = {}
    for entry in tensor.external_data:
        if entry.key in entries:
            raise OnnxModelError(f"{source}: {where} repeats the external data key {entry.key!r}")
        entries[entry.key] = entry.value
    return entries


def _allowed_roots(base_dir: str, model) -> list[str]:
    """The folders external data may resolve into: `base_dir`, and for a model file that is a
    symlink, the folder of its target."""
    roots = [os.path.realpath(base_dir)]
    if isinstance(model, (str, os.PathLike)):
        roots.append(os.path.dirname(os.path.realpath(model)))
    return roots


def _load_external(tensor: onnx.TensorProto, where: str, source: str, roots: list[str]) -> None:
    """Reads the tensor's external data into raw_data, after checking its location, offset and
    length against the model's folder, the file and the tensor's dims."""
    entries = _entries(tensor, where, source)
    location = entries.get("location", "")
    what = f"{source}: {where}, external data {location!r}"
    if not location or "\0" in location:
        raise OnnxModelError(f"{what}: the location is empty or not a file name")
    if os.path.isabs(location) or location.startswith("\\") or ntpath.splitdrive(location)[0]:
        raise OnnxModelError(f"{what}: an absolute path is refused (external data must lie in "
                             "the model's folder)")
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise OnnxModelError(f"{what}: a path with '..' is refused (external data must lie in "
                             "the model's folder)")
    real = os.path.realpath(os.path.join(roots[0], location))
    if not any(os.path.commonpath([real, root]) == root for root in roots):
        raise OnnxModelError(f"{what}: resolves to {real}, outside the model's folder {roots[0]}")
    offset, length = (_non_negative(entries, key, what) for key in ("offset", "length"))
    expected = _nbytes(tensor)
    if expected is None:
        raise OnnxModelError(f"{what}: element type {tensor.data_type} cannot be stored "
                             "externally")
    if tensor.HasField("raw_data") or _typed_values(tensor):
        raise OnnxModelError(f"{what}: the tensor also holds data of its own")
    with _open_regular(real, lambda problem: f"{what}: {problem}", follow_symlinks=False) as (
            f, size):
        offset = offset or 0
        if length is None:
            length = size - offset
        if offset > size or offset + length > size:
            raise OnnxModelError(f"{what}: offset {offset} and length {length} lie outside the "
                                 f"file ({size} bytes)")
        if length != expected:
            raise OnnxModelError(f"{what}: length {length} bytes, but its dims "
                                 f"{list(tensor.dims)} need {expected} bytes")
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise OnnxModelError(f"{what}: the file ended after {len(data)} of {length} bytes")
    tensor.raw_data = data
    tensor.data_location = _T.DEFAULT
    del tensor.external_data[:]


def _non_negative(entries: dict[str, str], key: str, what: str) -> int | None:
    if key not in entries:
        return None
    value = entries[key].strip()
    if not (value.isascii() and value.isdigit()):
        raise OnnxModelError(f"{what}: {key} {entries[key]!r} is not a non-negative integer")
    return int(value)


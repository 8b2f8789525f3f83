"""ONNX element types <-> torch dtypes, and ONNX TensorProtos -> torch tensors."""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..errors import OnnxModelError

_T = onnx.TensorProto
TORCH_DTYPES = {
    _T.FLOAT: torch.float32, _T.DOUBLE: torch.float64, _T.FLOAT16: torch.float16,
    _T.BFLOAT16: torch.bfloat16, _T.INT8: torch.int8, _T.INT16: torch.int16,
    _T.INT32: torch.int32, _T.INT64: torch.int64, _T.UINT8: torch.uint8, _T.BOOL: torch.bool,
    _T.UINT16: torch.uint16, _T.UINT32: torch.uint32, _T.UINT64: torch.uint64,
    _T.COMPLEX64: torch.complex64, _T.COMPLEX128: torch.complex128,
}
ONNX_TYPES = {v: k for k, v in TORCH_DTYPES.items()}


def torch_dtype(elem_type: int) -> torch.dtype:
    """The torch dtype of an ONNX element type; a clear error for those torch cannot hold
    (strings, float8, 4-bit and 2-bit integers)."""
    try:
        return TORCH_DTYPES[elem_type]
    except KeyError:
        name = _T.DataType.Name(elem_type) if elem_type in _T.DataType.values() else elem_type
        raise OnnxModelError(f"element type {name} is not supported") from None


def tensor_from_proto(proto: onnx.TensorProto) -> torch.Tensor:
    """A TensorProto's values as a torch tensor. External data must already be loaded (by
    `load_model`, with its checks): onnx's own conversion would read the file itself."""
    if proto.data_location == _T.EXTERNAL:
        raise OnnxModelError(f"tensor {proto.name!r} has external data that was not loaded "
                             "(models go through tensorsmith.onnx.load_model)")
    dtype = torch_dtype(proto.data_type)
    array = numpy_helper.to_array(proto)
    if dtype == torch.bfloat16:
        return _bfloat16(array)
    return torch.from_numpy(np.array(array, copy=True))


def _bfloat16(array: np.ndarray) -> torch.Tensor:
    """A copy of a numpy array of bfloat16 values (ml_dtypes' type, or their 16-bit patterns)
    as a torch bfloat16 tensor, through its bits: torch takes no ml_dtypes array."""
    bits = np.array(array, copy=True, order="C").view(np.int16)
    return torch.from_numpy(bits).view(torch.bfloat16)


def to_torch(value, device) -> torch.Tensor:
    """A user's input (numpy array, torch tensor, Python number) as a tensor on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        raise TypeError(f"an input of numpy dtype {array.dtype} is not supported")
    if array.dtype.name == "bfloat16":
        return _bfloat16(array).to(device)
    return torch.from_numpy(np.array(array, copy=True)).to(device)


def to_numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    if value.dtype == torch.bfloat16:
        import ml_dtypes
        return value.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return value.numpy()

"""A model file is data: malformed files, external data outside the model's folder and absurd
shapes are refused with an OnnxModelError naming the file or tensor and the problem."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tensorsmith

import tensorsmith.onnx as ts_onnx
from tensorsmith.errors import OnnxModelError, OnnxUnsupportedError
from tensorsmith.onnx import load as load_module
from tensorsmith.onnx.load import load_model

SHAPE = [2, 3]


def _external(name, location, dims=SHAPE, offset=None, length=None):
    """A float TensorProto whose data lies in the external file `location`."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims,
                         data_location=TensorProto.EXTERNAL)
    for key, value in [("location", location), ("offset", offset), ("length", length)]:
        if value is not None:
            tensor.external_data.add(key=key, value=str(value))
    return tensor


def _model(weight: TensorProto) -> onnx.ModelProto:
    """Y = Relu(X + W), W the given initializer."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["T"]), helper.make_node("Relu", ["T"], ["Y"])],
        "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(model: onnx.ModelProto, path) -> str:
    path.write_bytes(model.SerializeToString())
    return str(path)


def _weights(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _refused(model, *names, **kwargs) -> str:
    with pytest.raises(OnnxModelError) as info:
        load_model(model, **kwargs)
    message = str(info.value)
    for name in names:
        assert str(name) in message, f"{name!r} not in {message!r}"
    return message


@pytest.fixture
def folder(tmp_path):
    """The model's folder, inside tmp_path (so that tmp_path/secret.bin lies outside it), with a
    file outside it of exactly the size of a weight."""
    (tmp_path / "model").mkdir()
    (tmp_path / "secret.bin").write_bytes(_weights(np.random.default_rng(), *SHAPE).tobytes())
    return tmp_path / "model"


# Malformed model files

def test_garbage_file(tmp_path):
    for i, data in enumerate([b"\xff" * 64, np.random.default_rng().bytes(1000)]):
        path = tmp_path / f"garbage{i}.onnx"
        path.write_bytes(data)
        _refused(str(path), path, "not a valid ONNX model")


def test_text_file_is_not_a_model(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("hello\n")
    _refused(str(path), path, "not a valid ONNX model")


def test_protobuf_without_a_graph(tmp_path):
    path = tmp_path / "nograph.onnx"
    path.write_bytes(onnx.ModelProto(ir_version=8).SerializeToString())
    _refused(str(path), path, "no graph")


def test_a_graph_reading_an_undefined_value_names_it(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "nowhere"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = _save(model, tmp_path / "m.onnx")
    program = tensorsmith.onnx.compile(path)
    x = np.random.default_rng().standard_normal(SHAPE).astype(np.float32)
    with pytest.raises(OnnxModelError, match="'nowhere', which no node produces"):
        program(x)


def test_truncated_model(tmp_path):
    weight = helper.make_tensor("W", TensorProto.FLOAT, [64, 64],
                                _weights(np.random.default_rng(), 64, 64).tobytes(), raw=True)
    data = _model(weight).SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[:len(data) // 2])
    _refused(str(path), path, "not a valid ONNX model")


def test_garbage_bytes():
    _refused(b"\x08\x07\x12\xff\xff\xff\xff\x0f", "<bytes>", "not a valid ONNX model")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    _refused(str(path), path, "empty")


def test_missing_file_and_directory(tmp_path):
    _refused(str(tmp_path / "absent.onnx"), tmp_path / "absent.onnx", "no such file")
    _refused(str(tmp_path), tmp_path, "directory")


def test_file_over_protobuf_limit_is_not_read(tmp_path):
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(load_module.PROTOBUF_LIMIT)  # sparse: no disk used, never read
    _refused(str(path), path, "2 GiB")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_model_file_does_not_block(tmp_path):
    path = tmp_path / "pipe.onnx"
    os.mkfifo(path)
    _refused(str(path), path, "not a regular file")


# External data

def test_valid_external_data_loads_and_runs(folder):
    rng = np.random.default_rng()
    padding, weight = rng.bytes(100), _weights(rng, *SHAPE)
    (folder / "weights.bin").write_bytes(padding + weight.tobytes() + rng.bytes(7))
    path = _save(_model(_external("W", "weights.bin", offset=100, length=weight.nbytes)),
                 folder / "m.onnx")
    proto = load_model(path)
    assert proto.graph.initializer[0].data_location == TensorProto.DEFAULT
    x = _weights(rng, *SHAPE)
    for compiled in (False, True):
        (y,) = ts_onnx.compile(path, compiled=compiled)(x)
        np.testing.assert_allclose(y, np.maximum(x + weight, 0), rtol=1e-6)


def test_external_data_through_symlinks_inside_the_folder(folder):
    rng = np.random.default_rng()
    weight = _weights(rng, *SHAPE)
    (folder / "blobs").mkdir()
    (folder / "blobs" / "data").write_bytes(weight.tobytes())
    os.symlink("blobs/data", folder / "weights.bin")
    path = _save(_model(_external("W", "weights.bin")), folder / "m.onnx")
    x = _weights(rng, *SHAPE)
    (y,) = ts_onnx.compile(path, compiled=False)(x)
    np.testing.assert_allclose(y, np.maximum(x + weight, 0), rtol=1e-6)


def test_hub_cache_layout(tmp_path):
    """Model file and data file both symlinks into one blob folder (Hugging Face hub cache)."""
    rng = np.random.default_rng()
    weight = _weights(rng, *SHAPE)
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "rev"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    (blobs / "b1").write_bytes(_model(_external("W", "m.onnx_data")).SerializeToString())
    (blobs / "b2").write_bytes(weight.tobytes())
    os.symlink("../../blobs/b1", snapshot / "m.onnx")
    os.symlink("../../blobs/b2", snapshot / "m.onnx_data")
    x = _weights(rng, *SHAPE)
    (y,) = ts_onnx.compile(str(snapshot / "m.onnx"), compiled=False)(x)
    np.testing.assert_allclose(y, np.maximum(x + weight, 0), rtol=1e-6)


def test_external_data_escaping_with_dotdot(folder):
    path = _save(_model(_external("W", "../secret.bin")), folder / "m.onnx")
    _refused(path, "'W'", "../secret.bin", "..")
    path = _save(_model(_external("W", "sub/../../secret.bin")), folder / "m.onnx")
    _refused(path, "'W'", "sub/../../secret.bin")


def test_external_data_absolute_path(folder):
    secret = str(folder.parent / "secret.bin")
    path = _save(_model(_external("W", secret)), folder / "m.onnx")
    _refused(path, "'W'", secret, "absolute")


def test_external_data_symlink_outside(folder):
    os.symlink(folder.parent / "secret.bin", folder / "weights.bin")
    path = _save(_model(_external("W", "weights.bin")), folder / "m.onnx")
    _refused(path, "'W'", "weights.bin", "outside the model's folder")
    if os.path.exists("/etc/hostname"):
        os.symlink("/etc/hostname", folder / "host.bin")
        path = _save(_model(_external("W", "host.bin", dims=[1])), folder / "m.onnx")
        _refused(path, "'W'", "host.bin", "outside the model's folder")


def test_external_data_symlinked_folder_outside(folder, tmp_path):
    os.symlink(tmp_path, folder / "up")
    path = _save(_model(_external("W", "up/secret.bin")), folder / "m.onnx")
    _refused(path, "'W'", "up/secret.bin", "outside the model's folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_external_data_fifo_does_not_block(folder):
    os.mkfifo(folder / "pipe")
    path = _save(_model(_external("W", "pipe")), folder / "m.onnx")
    _refused(path, "'W'", "pipe", "not a regular file")


def test_external_data_directory_and_missing_file(folder):
    (folder / "dir").mkdir()
    _refused(_save(_model(_external("W", "dir")), folder / "m.onnx"), "'W'", "dir", "directory")
    _refused(_save(_model(_external("W", "absent.bin")), folder / "m.onnx"), "'W'",
             "absent.bin", "no such file")


@pytest.mark.parametrize("offset, length, problem", [
    (0, 4, "need 24 bytes"),            # length disagrees with dims
    (None, None, "need 24 bytes"),      # the whole file (32 bytes) disagrees with dims
    (16, 24, "outside the file"),       # runs past the end
    (1000, 24, "outside the file"),     # offset past the end
    ("-8", 24, "not a non-negative integer"),
    ("1e3", 24, "not a non-negative integer"),
])
def test_external_data_bad_offset_or_length(folder, offset, length, problem):
    (folder / "weights.bin").write_bytes(np.random.default_rng().bytes(32))
    path = _save(_model(_external("W", "weights.bin", offset=offset, length=length)),
                 folder / "m.onnx")
    _refused(path, "'W'", "weights.bin", problem)


def test_external_data_with_absurd_dims_is_not_read(folder):
    (folder / "weights.bin").write_bytes(np.random.default_rng().bytes(32))
    path = _save(_model(_external("W", "weights.bin", dims=[2**20, 2**20])), folder / "m.onnx")
    _refused(path, "'W'", "absurd dims")
    path = _save(_model(_external("W", "weights.bin", dims=[2**10, 2**10], length=2**22)),
                 folder / "m.onnx")
    _refused(path, "'W'", "weights.bin", "outside the file")


def test_external_data_in_a_subgraph(folder):
    then = helper.make_graph([helper.make_node("Relu", ["V"], ["A"])], "then", [],
                             [helper.make_tensor_value_info("A", TensorProto.FLOAT, SHAPE)],
                             [_external("V", "../secret.bin")])
    other = helper.make_graph([helper.make_node("Relu", ["X"], ["B"])], "else", [],
                              [helper.make_tensor_value_info("B", TensorProto.FLOAT, SHAPE)])
    graph = helper.make_graph(
        [helper.make_node("If", ["C"], ["Y"], then_branch=then, else_branch=other)], "g",
        [helper.make_tensor_value_info("C", TensorProto.BOOL, []),
         helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _refused(_save(model, folder / "m.onnx"), "'V'", "../secret.bin")


def test_bytes_and_proto_with_external_data_need_base_dir(folder):
    rng = np.random.default_rng()
    weight = _weights(rng, *SHAPE)
    (folder / "weights.bin").write_bytes(weight.tobytes())
    model = _model(_external("W", "weights.bin"))
    for given in (model, model.SerializeToString()):
        _refused(given, "'W'", "weights.bin", "base_dir")
        loaded = load_model(given, base_dir=folder)
        got = onnx.numpy_helper.to_array(loaded.graph.initializer[0])
        np.testing.assert_array_equal(got, weight)
    assert model.graph.initializer[0].data_location == TensorProto.EXTERNAL  # not modified
    _refused(_model(_external("W", "../secret.bin")), "'W'", "../secret.bin", base_dir=folder)


def test_unloaded_external_data_is_never_read_by_conversion(folder):
    from tensorsmith.onnx.dtypes import tensor_from_proto
    (folder / "weights.bin").write_bytes(np.random.default_rng().bytes(24))
    with pytest.raises(OnnxModelError, match="'W'"):
        tensor_from_proto(_external("W", "weights.bin"))


# Absurd shapes and sizes

def test_negative_dims(tmp_path):
    weight = helper.make_tensor("W", TensorProto.FLOAT, [2, 3], np.ones(6, np.float32))
    weight.dims[0] = -2
    _refused(_save(_model(weight), tmp_path / "m.onnx"), "'W'", "negative", "-2")


def test_huge_dims(tmp_path):
    weight = helper.make_tensor("W", TensorProto.FLOAT, [1], np.ones(1, np.float32))
    weight.dims[:] = [2**62, 2**62, 2**62]
    _refused(_save(_model(weight), tmp_path / "m.onnx"), "'W'", "absurd dims")


def test_raw_data_disagreeing_with_dims(tmp_path):
    rng = np.random.default_rng()
    weight = helper.make_tensor("W", TensorProto.FLOAT, [4], _weights(rng, 4).tobytes(), raw=True)
    weight.dims[:] = [1000, 1000]
    _refused(_save(_model(weight), tmp_path / "m.onnx"), "'W'", "4000000 bytes", "16 bytes")


def test_typed_data_disagreeing_with_dims(tmp_path):
    weight = helper.make_tensor("W", TensorProto.FLOAT, [1], [1.5])
    weight.dims[:] = [2, 3]
    _refused(_save(_model(weight), tmp_path / "m.onnx"), "'W'", "6 elements", "1 values")


def test_constant_attribute_with_negative_dims(tmp_path):
    value = helper.make_tensor("c", TensorProto.FLOAT, [1], [2.5])
    value.dims[:] = [-1]
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["C"], name="const", value=value),
         helper.make_node("Add", ["X", "C"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _refused(model, "'c'", "'const'", "negative")


# No code from the model

def test_custom_domain_op_is_data_not_code(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Exploit", ["X"], ["Y"], domain="evil.ops", name="boom")], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("evil.ops", 1)])
    program = ts_onnx.compile(_save(model, tmp_path / "m.onnx"), compiled=False)
    with pytest.raises(OnnxUnsupportedError, match="Exploit"):
        program(_weights(np.random.default_rng(), *SHAPE))

"""tensorsmith.onnx.compile on hand-built graphs: compiled per input shape, eager where values
decide shapes, onnx's reference for ops we lack, clear errors for bad inputs and unknown ops."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import tensorsmith
from tensorsmith.errors import FallbackWarning, InputError, OnnxUnsupportedError
from tensorsmith.onnx.backend import TensorsmithBackend

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset=18, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def _value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.fixture
def rng():
    return np.random.default_rng()


def test_a_symbolic_batch_compiles_a_shape_on_its_second_call_and_matches_numpy(rng):
    weight = rng.standard_normal((8, 5)).astype(np.float32)
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"]),
         helper.make_node("Shape", ["z"], ["s"]), helper.make_node("Reshape", ["z", "s"], ["out"])],
        [_value("x", F, ["batch", 8])], [_value("out", F, ["batch", 5])],
        [onnx.numpy_helper.from_array(weight, "w")])
    program = tensorsmith.onnx.compile(model)
    for batch in (3, 7, 3, 7, 5, 3):
        x = rng.standard_normal((batch, 8)).astype(np.float32)
        (got,) = program(x)
        np.testing.assert_allclose(got, np.maximum(x @ weight, 0), rtol=1e-5, atol=1e-6)
    assert sorted(signature[0][0][0] for signature in program._runners) == [3, 7]
    assert not program.eager_reasons


def test_a_shape_read_from_input_values_runs_eagerly_and_stays_exact(rng):
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["y"])],
                   [_value("x", F, [6]), _value("shape", TensorProto.INT64, [2])],
                   [_value("y", F, None)])
    program = tensorsmith.onnx.compile(model)
    x = rng.standard_normal(6).astype(np.float32)
    with pytest.warns(FallbackWarning, match="runs eagerly"):
        (first,) = program(x, np.array([2, 3]))
    (second,) = program(x, np.array([3, 2]))  # same signature, other values: other result
    assert first.shape == (2, 3) and second.shape == (3, 2)
    np.testing.assert_array_equal(second, x.reshape(3, 2))


def test_an_op_with_a_value_dependent_output_shape_runs_eagerly(rng):
    model = _model([helper.make_node("NonZero", ["x"], ["y"])], [_value("x", F, [5])],
                   [_value("y", TensorProto.INT64, None)])
    program = tensorsmith.onnx.compile(model)
    inputs = [np.where(rng.random(5) < 0.5, 0, rng.standard_normal(5) + 3).astype(np.float32)
              for _ in range(2)]
    with pytest.warns(FallbackWarning, match="shape depends on input values"):
        results = [program(x)[0] for x in inputs]
    for x, got in zip(inputs, results):
        np.testing.assert_array_equal(got, np.array(np.nonzero(x)))


def test_inputs_by_name_and_clear_errors_for_wrong_ones(rng):
    model = _model([helper.make_node("Add", ["a", "b"], ["c"])],
                   [_value("a", F, [3]), _value("b", F, [3])], [_value("c", F, [3])])
    program = tensorsmith.onnx.compile(model)
    a, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(program(b=b, a=a)[0], a + b, rtol=1e-6)
    with pytest.raises(InputError, match="no input 'd'"):
        program(a, d=b)
    with pytest.raises(InputError, match=r"missing"):
        program(a)
    with pytest.raises(InputError, match="takes 2 inputs"):
        program(a, b, a)


def test_an_unknown_op_names_its_type_and_node():
    model = _model([helper.make_node("FancyOp", ["x"], ["y"], name="layer3/fancy", domain="acme")],
                   [_value("x", F, [2])], [_value("y", F, [2])], domains=["acme"])
    program = tensorsmith.onnx.compile(model)
    with pytest.raises(OnnxUnsupportedError, match=r"FancyOp.*layer3/fancy|layer3/fancy.*FancyOp"):
        program(np.ones(2, np.float32) + np.random.default_rng().random(2, np.float32))


def test_an_op_only_onnx_implements_runs_through_its_reference(rng):
    node = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.25)
    model = _model([node], [_value("x", F, [4])], [_value("y", F, [4])], domains=["ai.onnx.ml"])
    program = tensorsmith.onnx.compile(model)
    x = rng.standard_normal(4).astype(np.float32)
    with pytest.warns(FallbackWarning, match="reference"):
        (got,) = program(x)
    np.testing.assert_array_equal(got, (x > 0.25).astype(np.float32))


def test_the_backend_class_runs_a_node_like_onnx_tools_drive_it(rng):
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    (got,) = TensorsmithBackend.run_node(helper.make_node("Mul", ["a", "b"], ["c"]), [a, b])
    np.testing.assert_allclose(got, a * b, rtol=1e-6)
    assert TensorsmithBackend.supports_device("CPU")


def test_a_random_op_draws_new_values_on_every_call():
    node = helper.make_node("RandomNormal", [], ["y"], shape=[64])
    model = _model([node], [], [_value("y", F, [64])])
    program = tensorsmith.onnx.compile(model)
    with pytest.warns(FallbackWarning, match="reference"):
        first = program()[0]
    second = program()[0]
    assert first.shape == (64,) and not np.array_equal(first, second)


def test_a_long_loop_runs_eagerly_instead_of_unrolling(rng):
    from tensorsmith.onnx.ops import registry
    body = helper.make_graph(
        [helper.make_node("Add", ["x_in", "one"], ["x_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [_value("i", TensorProto.INT64, []), _value("cond_in", TensorProto.BOOL, []),
         _value("x_in", F, [3])],
        [_value("cond_out", TensorProto.BOOL, []), _value("x_out", F, [3])],
        [onnx.numpy_helper.from_array(np.ones(3, np.float32), "one")])
    trips = registry.UNROLLED_ITERATIONS + 5
    model = _model([helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)],
                   [_value("x", F, [3])], [_value("y", F, [3])],
                   [onnx.numpy_helper.from_array(np.array(trips, np.int64), "n")])
    x = rng.standard_normal(3).astype(np.float32)
    with pytest.warns(FallbackWarning, match="not unrolled"):
        (got,) = tensorsmith.onnx.compile(model)(x)
    np.testing.assert_allclose(got, x + trips, rtol=1e-5)


def test_shapes_run_eagerly_do_not_count_towards_the_cap_on_compiled_ones(rng, monkeypatch):
    from tensorsmith import config
    from tensorsmith.onnx import program as program_module
    from tensorsmith.onnx.ops.registry import DataDependent
    traced = program_module.trace

    def trace_all_but_batch_1(graph, inputs, device):
        if inputs[0].shape[0] == 1:
            raise DataDependent("batch 1 is made to run eagerly")
        return traced(graph, inputs, device)
    monkeypatch.setattr(program_module, "trace", trace_all_but_batch_1)
    monkeypatch.setattr(config, "max_specializations", 1)
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_value("x", F, ["batch", 4])],
                   [_value("y", F, ["batch", 4])])
    program = tensorsmith.onnx.compile(model)
    with pytest.warns(FallbackWarning, match="batch 1 is made to run eagerly"):
        for batch in (1, 1, 2, 2):
            x = rng.standard_normal((batch, 4)).astype(np.float32)
            np.testing.assert_array_equal(program(x)[0], np.maximum(x, 0))
    assert list(program.eager_reasons) == [(((1, 4), torch.float32),)]
    assert program._runners[(((2, 4), torch.float32),)] != program._eager  # batch 2 compiled

"""Real models exported with torch.onnx.export (ResNet-50, BERT, GPT-2 at tiny sizes, random
weights) run compiled by tensorsmith and match onnxruntime within float32 tolerance, on fresh
random inputs; `tensorsmith onnx run` prints the same comparison."""
from __future__ import annotations

import numpy as np
import pytest

import tensorsmith
from tensorsmith.bench.onnx_exports import export
from tensorsmith.onnx.inputs import example_inputs

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("onnx-models"))


@pytest.mark.parametrize("name", ["resnet50", "bert-base", "gpt2"])
def test_an_exported_model_matches_onnxruntime(name, folder):
    exported = export(name, "tiny", folder)
    program = tensorsmith.onnx.compile(exported.path)
    session = onnxruntime.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    for _ in range(2):
        inputs = example_inputs(program.graph, seed=int(np.random.default_rng().integers(1 << 30)))
        got = program(**inputs)
        want = session.run(None, inputs)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(np.abs(w).max()))
    assert not program.eager_reasons, program.eager_reasons


def test_the_run_command_prints_outputs_and_their_difference_from_onnxruntime(folder, capsys):
    from tensorsmith.cli import main
    exported = export("gpt2", "tiny", folder)
    assert main(["onnx", "run", exported.path]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("output: float32 [1, 16, 1000]")
    difference = float(line.rsplit(" ", 1)[-1])
    assert difference < 1e-3


def test_the_run_command_names_a_broken_file(tmp_path, capsys):
    from tensorsmith.cli import main
    path = tmp_path / "broken.onnx"
    path.write_bytes(np.random.default_rng().bytes(256))
    assert main(["onnx", "run", str(path)]) == 2
    assert "broken.onnx" in capsys.readouterr().err


def test_dynamic_axes_compile_a_length_on_its_second_call_and_match_onnxruntime(tmp_path):
    import contextlib
    import os

    import torch

    from tensorsmith.bench import onnx_exports
    model, inputs = onnx_exports._bert("tiny")
    path = str(tmp_path / "bert-dynamic.onnx")
    batch, length = torch.export.Dim("batch", max=64), torch.export.Dim("length", max=512)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        torch.onnx.export(model.eval(), tuple(inputs.values()), path, dynamo=True,
                          input_names=list(inputs), output_names=["output"],
                          dynamic_shapes={name: {0: batch, 1: length} for name in inputs})
    program = tensorsmith.onnx.compile(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng()
    assert program.symbolic
    for length in (8, 16, 8, 16, 24):
        feeds = {"input_ids": rng.integers(0, 1000, (2, length)),
                 "attention_mask": rng.integers(0, 2, (2, length))}
        np.testing.assert_allclose(program(**feeds)[0], session.run(None, feeds)[0],
                                   rtol=1e-4, atol=1e-5)
    assert sorted(s[0][0][1] for s in program._runners) == [8, 16]  # 24 came once: eager
    assert not program.eager_reasons

"""`tensorsmith data check` on files (exit status, JSON), and every accepted kind of input."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from pyarrow import ipc

from tensorsmith import data
from tensorsmith.cli import main


def test_cli_exit_status_and_json_on_npy(tmp_path, capsys):
    rng = np.random.default_rng()
    train, eval_ = rng.normal(size=(300, 6)).astype(np.float32), rng.normal(size=(100, 6)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "eval.npy", eval_)
    assert main(["data", "check", str(tmp_path / "train.npy"), str(tmp_path / "eval.npy"),
                 "--no-progress"]) == 0
    eval_[[4, 50]] = train[[10, 20]]
    np.save(tmp_path / "eval.npy", eval_)
    out = tmp_path / "report.json"
    args = ["data", "check", str(tmp_path / "train.npy"), str(tmp_path / "eval.npy"), "--json", str(out)]
    assert main(args) == 1
    assert "FAIL  exact_duplicates" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["passed"] is False
    exact = next(f for f in report["findings"] if f["check"] == "exact_duplicates")
    assert exact["indices"] == [4, 50] and exact["count"] == 2
    assert main(args + ["--max-exact", "0.05"]) == 0  # 2% allowed by the threshold
    assert main(["data", "check", str(tmp_path / "train.npy"), str(tmp_path / "missing.npy")]) == 2


def test_cli_on_parquet_and_a_saved_dataset_directory(tmp_path):
    rng = np.random.default_rng()
    texts = [" ".join(map(str, rng.integers(0, 10_000, 25))) for _ in range(400)]
    labels = rng.integers(0, 2, 400)
    pq.write_table(pa.table({"text": texts[:300], "label": labels[:300]}), tmp_path / "train.parquet")
    saved = tmp_path / "eval_dataset"  # the layout datasets.save_to_disk writes: Arrow stream files
    saved.mkdir()
    eval_texts = texts[300:]
    eval_texts[7] = texts[3]
    table = pa.table({"text": eval_texts, "label": labels[300:], "leak": labels[300:]})
    with ipc.new_stream(saved / "data-00000-of-00001.arrow", table.schema) as writer:
        writer.write_table(table)
    train_table = pa.table({"text": texts[:300], "label": labels[:300], "leak": labels[:300]})
    pq.write_table(train_table, tmp_path / "train.parquet")
    out = tmp_path / "r.json"
    assert main(["data", "check", str(tmp_path / "train.parquet"), str(saved), "--key", "text",
                 "--json", str(out), "--no-progress"]) == 1
    failed = {f["check"]: f for f in json.loads(out.read_text())["findings"] if f["status"] == "fail"}
    assert set(failed) == {"exact_duplicates", "leakage"}
    assert failed["exact_duplicates"]["indices"] == [7] and failed["leakage"]["column"] == "leak"


def test_inputs_of_every_kind():
    rng = np.random.default_rng()
    x, y = torch.randn(50, 3), torch.randint(0, 2, (50,))
    assert set(data.load(torch.utils.data.TensorDataset(x, y))) == {"input", "label"}
    assert set(data.load((x, y))) == {"input", "label"}
    assert data.load(x.numpy())["input"].kind == "numeric"
    structured = np.zeros(5, dtype=[("a", "f4"), ("b", "i8")])
    assert set(data.load(structured)) == {"a", "b"}
    assert data.load(["a b", "c"])["text"].kind == "text"
    assert data.load({"input_ids": rng.integers(0, 9, (4, 7))})["input_ids"].kind == "tokens"
    assert data.load(torch.rand(4, 3, 16, 16))["input"].kind == "image"
    assert data.load(np.random.rand(4, 16, 16, 3))["input"].values.shape == (4, 3, 16, 16)

    class FakeHuggingFaceDataset:  # datasets.Dataset keeps its pyarrow table at .data.table
        class data:
            table = pa.table({"text": ["x y", None], "ids": [[1, 2], [3]]})
    split = data.load(FakeHuggingFaceDataset())
    assert split["text"].values == ["x y", ""] and split["ids"].kind == "tokens"
    selected = FakeHuggingFaceDataset()
    selected._indices = pa.table({"indices": pa.array([1], pa.uint64())})  # after .select([1])
    assert data.load(selected)["text"].values == [""]
    with pytest.raises(ValueError, match="differ in length"):
        data.load({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="key column 'nope'"):
        data.check(x, x, key="nope")
    with pytest.raises(ValueError, match="'input' is numeric in train but text in eval"):
        data.check(x, {"input": ["a", "b"] * 25}, key="input")
    unlabelled = data.check((x, y), x)  # no label in eval: no leakage check, the rest runs
    assert unlabelled.label is None and unlabelled.by_check("exact_duplicates")

"""Measured choices kept on disk (choices.py): what one process measured, the next one reads
without measuring; a damaged file or entry is measured again, never trusted."""
from __future__ import annotations

import json
import os

import pytest
import torch

from tensorsmith import choices
from tensorsmith.choices import Choices
from tensorsmith.runtime import cpu_matmul


def test_a_choice_made_in_one_process_is_read_by_the_next(tmp_path):
    first = Choices("product", str(tmp_path))
    assert first.get((3, (4, 5))) is None
    first[(3, (4, 5))] = True
    first[("other", torch.float32)] = False
    later = Choices("product", str(tmp_path))  # a new process: nothing in memory
    assert later.get((3, (4, 5))) is True and later.get(("other", torch.float32)) is False
    assert later.get((3, (4, 6))) is None and len(later) == 2
    assert Choices("another_kind", str(tmp_path)).get((3, (4, 5))) is None


def test_two_processes_keep_each_others_choices(tmp_path):
    a, b = Choices("product", str(tmp_path)), Choices("product", str(tmp_path))
    a.get(("x",)), b.get(("y",))  # both read the (empty) file first
    a[("x",)] = True
    b[("y",)] = False  # merged with what a wrote meanwhile
    fresh = Choices("product", str(tmp_path))
    assert fresh.get(("x",)) is True and fresh.get(("y",)) is False


def test_a_damaged_file_or_entry_is_ignored(tmp_path):
    store = Choices("product", str(tmp_path))
    store[("x",)] = True
    (path,) = [tmp_path / name for name in os.listdir(tmp_path)]
    path.write_text("{not json")
    assert Choices("product", str(tmp_path)).get(("x",)) is None
    path.write_text(json.dumps({repr(("x",)): "yes", repr(("y",)): 1, repr(("z",)): False}))
    reread = Choices("product", str(tmp_path))
    assert reread.get(("x",)) is None and reread.get(("y",)) is None and reread.get(("z",)) is False


def test_another_machine_reads_none_of_them(tmp_path, monkeypatch):
    Choices("product", str(tmp_path))[("x",)] = True
    monkeypatch.setattr(choices, "machine", lambda: "another torch on another processor")
    assert Choices("product", str(tmp_path)).get(("x",)) is None


@pytest.mark.skipif(not cpu_matmul.available(), reason="no oneDNN in this torch")
def test_a_warm_start_times_no_cpu_product(tmp_path, monkeypatch):
    """The first process times both libraries for a signature; the next takes the stored choice,
    and its product still matches float64."""
    g = torch.Generator().manual_seed(torch.seed() % (1 << 31))
    a, b = torch.randn(128, 96, generator=g), torch.randn(96, 80, generator=g)
    timed = []

    def ratio(*operands):
        timed.append(operands)
        return 0.5  # oneDNN twice as fast

    monkeypatch.setattr(cpu_matmul, "_ratio", ratio)
    monkeypatch.setattr(cpu_matmul, "_CHOICE", Choices("cpu_matmul", str(tmp_path)))
    assert cpu_matmul.eligible(a, b)
    cpu_matmul.matmul(a, b)
    assert len(timed) == 1
    monkeypatch.setattr(cpu_matmul, "_CHOICE", Choices("cpu_matmul", str(tmp_path)))
    product = cpu_matmul.matmul(a, b)
    assert len(timed) == 1 and list(cpu_matmul._CHOICE.values()) == [True]
    torch.testing.assert_close(product.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-4)

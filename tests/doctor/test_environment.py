"""Planted misconfigurations of the environment, each found with its message: TF32 off on a (faked)
Ampere GPU, oversubscribed threads with the measured cost, a refused compile cache, what
nvidia-smi reports (faked), settings that slow everything."""
from __future__ import annotations

import os
import re

import pytest
import torch

import tensorsmith
from tensorsmith.doctor import environment, gpu, machine


def _ampere(monkeypatch, capability=(8, 0)):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")


@pytest.fixture
def highest_precision():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


def test_tf32_off_on_an_ampere_gpu(monkeypatch, highest_precision):
    _ampere(monkeypatch)
    [finding] = environment.tf32()
    assert finding.check == "tf32"
    assert "TF32 is off on NVIDIA A100" in finding.what and "8.0" in finding.what
    assert "set_float32_matmul_precision('high')" in finding.fix
    assert "not measured here" in finding.effect  # no real device to time it on


def test_tf32_on_or_an_older_gpu_is_fine(monkeypatch, highest_precision):
    _ampere(monkeypatch, capability=(7, 0))
    assert environment.tf32() == []
    _ampere(monkeypatch)
    torch.set_float32_matmul_precision("high")
    assert environment.tf32() == []


def test_oversubscribed_threads_with_the_measured_cost():
    cores = machine.cores_available()
    before = torch.get_num_threads()
    torch.set_num_threads(4 * cores)
    try:
        [finding] = environment.threads()
    finally:
        torch.set_num_threads(before)
    assert finding.check == "threads"
    assert f"torch uses {4 * cores} threads on {cores} physical core(s)" in finding.what
    assert "oversubscribed" in finding.what
    measured = re.search(rf"takes ([\d.]+) ms at {4 * cores} threads, ([\d.]+) ms at (\d+): "
                         r"([\d.]+)x", finding.effect)
    assert measured, finding.effect
    assert int(measured[3]) <= cores
    assert f"torch.set_num_threads({measured[3]})" in finding.fix


def test_a_refused_cache_names_the_directory_and_the_fix(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    directory.mkdir()
    os.chmod(directory, 0o777)
    monkeypatch.setattr(tensorsmith.config, "cache_dir", str(directory))
    [finding] = environment.compile_cache()
    assert finding.check == "compile_cache" and finding.severity == "error"
    assert "refused" in finding.what and str(directory) in finding.what
    assert "runs through ATen" in finding.effect
    assert f"chmod 700 {directory}" in finding.fix and "TENSORSMITH_CACHE_DIR" in finding.fix
    os.chmod(directory, 0o700)
    assert environment.compile_cache() == []


def _fake_smi(monkeypatch, answers):
    def nvidia_smi(*args, timeout=10.0):
        return next((rows for key, rows in answers.items() if key in args[0]), None)
    monkeypatch.setattr(machine, "nvidia_smi", nvidia_smi)


def test_what_nvidia_smi_reports(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _fake_smi(monkeypatch, {
        "driver_version": [["570.86.15"]],
        "clocks.sm": [["0", "NVIDIA H100", "1980", "1980", "0", "Not Active", "Not Active",
                       "Not Active"],
                      ["1", "NVIDIA H100", "1095", "1980", "2", "Not Active", "Active",
                       "Not Active"]],
        "compute-apps": [["4242", "/usr/bin/python3", "30512"]]})
    found = {f.check: f for f in environment.versions() + environment.gpu_state()}
    assert "driver 570.86.15 is older than CUDA 13.0" in found["versions"].what
    assert ">= 580" in found["versions"].effect
    assert "GPU 1" in found["gpu_clocks"].what and "thermal" in found["gpu_clocks"].what
    assert "1095 MHz of 1980 MHz" in found["gpu_clocks"].effect
    assert "2 uncorrected ECC" in found["gpu_ecc"].what and found["gpu_ecc"].severity == "error"
    assert "pid 4242 python3 (30512 MiB)" in found["gpu_processes"].what


def test_no_nvidia_smi_is_silent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _fake_smi(monkeypatch, {})
    assert gpu.driver() == [] and environment.gpu_state() == []


def test_settings_that_slow_every_step(monkeypatch):
    monkeypatch.setenv("CUDA_LAUNCH_BLOCKING", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "interpreter")
    with torch.autograd.set_detect_anomaly(True):
        found = {f.what: f for f in environment.settings()}
    assert {"CUDA_LAUNCH_BLOCKING=1", "TENSORSMITH_EXECUTOR=interpreter",
            "autograd anomaly detection is on"} <= set(found)


def test_the_environment_report_reads_as_a_list():
    report = tensorsmith.doctor()
    text = str(report)
    assert text.startswith("tensorsmith doctor\n") and "torch " in text and "CPU: " in text
    assert "environment: " in text and report.run is None
    for finding in report.environment:
        assert f"{finding.check}: {finding.what}" in text and finding.fix in text


def test_versions_against_what_is_supported(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.9.1")
    [old] = environment.versions()
    assert "torch 2.9.1 is older than tensorsmith supports" in old.what and old.severity == "error"
    monkeypatch.setattr(torch, "__version__", "2.15.0")
    [new] = environment.versions()
    assert "newer than tensorsmith was tested with" in new.what and new.severity == "note"
    monkeypatch.setattr(torch, "__version__", "2.13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(environment.importlib.util, "find_spec",
                        lambda name, *args: None if name == "triton" else object())
    _fake_smi(monkeypatch, {})
    [triton] = environment.versions()
    assert triton.what == "Triton is not installed" and "interpreter" in triton.effect

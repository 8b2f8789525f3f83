"""The bench's accuracy rule against float64: the relative tolerance, the allowance of a multiple
of eager's own error, the scale floor for tensors zero in exact arithmetic, and no allowance from an
eager result that is NaN or infinite."""
from __future__ import annotations

import torch

from tensorsmith.bench.accuracy import compare


def _ref(seed: int):
    return torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_within_tolerance_or_a_multiple_of_eagers_error():
    ref = _ref(1)
    near = ref + 1e-6 * ref.abs().max()  # 1e-6 relative
    far = ref + 1e-3 * ref.abs().max()  # 1e-3 relative
    assert compare([("a", near)], [("a", ref)]).passed
    assert not compare([("a", far)], [("a", ref)]).passed
    eager = ref + 2e-4 * ref.abs().max()  # eager itself this far off: 10x that is allowed
    assert compare([("a", far)], [("a", ref)], [("a", eager)]).passed


def test_a_tensor_zero_in_exact_arithmetic_is_judged_by_the_scale_around_it():
    big, zero = _ref(2) * 100, torch.zeros(8, dtype=torch.float64)
    noise = torch.full((8,), 1e-5, dtype=torch.float64)  # rounding noise, tiny beside `big`
    assert compare([("big", big), ("zero", noise)], [("big", big), ("zero", zero)]).passed


def test_eager_nan_or_inf_widens_nothing():
    ref = _ref(3)
    wrong = ref * 3
    for bad in (float("nan"), float("inf")):
        eager = ref.clone()
        eager[5] = bad
        result = compare([("a", wrong)], [("a", ref)], [("a", eager)])
        assert not result.passed and result.max_rel_error > 1

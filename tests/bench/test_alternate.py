"""bench/distributed.py's --ab: a config knob switched between rounds in one process."""
import random

import pytest

from tensorsmith import config
from tensorsmith.bench.distributed import AB_ROUNDS, alternate


class _Clock:
    """Times a step as the knob's cost: `on_ms` with it on, `off_ms` off, plus a little noise."""

    def __init__(self, on_ms, off_ms):
        self.on_ms, self.off_ms = on_ms, off_ms

    def sync(self):
        pass

    def time_ms(self, step):
        step()
        return (self.on_ms if config.direct_launch else self.off_ms) + random.uniform(-0.1, 0.1)


def test_alternate_times_each_setting_in_alternating_rounds_and_restores_the_knob():
    on_ms, off_ms = random.uniform(5, 10), random.uniform(11, 20)
    seen = []
    before = config.direct_launch
    result = alternate("direct_launch", lambda: seen.append(config.direct_launch), _Clock(on_ms, off_ms), 3)
    assert result["direct_launch on"] == pytest.approx(on_ms, abs=0.1)
    assert result["direct_launch off"] == pytest.approx(off_ms, abs=0.1)
    assert config.direct_launch == before
    rounds = [seen[i:i + 4] for i in range(0, len(seen), 4)]  # one untimed + 3 timed steps each
    assert len(rounds) == 2 * AB_ROUNDS and all(len(set(r)) == 1 for r in rounds)
    assert [r[0] for r in rounds[:4]] == [True, False, False, True]  # the order flips every round


def test_alternate_refuses_a_knob_that_is_not_a_boolean_setting():
    with pytest.raises(ValueError, match="boolean tensorsmith.config knob"):
        alternate("compile_threads", lambda: None, _Clock(1, 2), 1)

"""Back-off: doubling up to a cap, a little jitter, nonsense refused."""

import pytest

from core.backoff import Backoff


def test_backoff_doubles_up_to_the_cap_and_starts_over_after_a_success():
    backoff = Backoff(base=0.5, cap=4.0, jitter=0.0)
    assert [backoff.failure() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.success()
    assert backoff.failure() == 0.5


def test_backoff_jitter_only_shortens_a_little():
    low = Backoff(base=1.0, cap=8.0, jitter=0.25, rand=lambda: 0.999)
    high = Backoff(base=1.0, cap=8.0, jitter=0.25, rand=lambda: 0.0)
    assert 0.75 <= low.failure() < 1.0 and high.failure() == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"base": 0}, {"base": 2, "cap": 1}, {"jitter": 1.0}]
)
def test_backoff_refuses_nonsense(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)

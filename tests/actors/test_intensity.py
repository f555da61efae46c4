"""RestartIntensity: the pure restart-window counter shared by both supervisors."""

import pytest

from actors import RestartIntensity


def test_exceeded_only_after_more_than_max_restarts_in_the_window() -> None:
    """max_restarts restarts in the window are allowed; one more is a crash loop."""
    intensity = RestartIntensity(3, 10.0)
    assert [intensity.record(t) for t in (0.0, 1.0, 2.0)] == [False, False, False]
    assert intensity.record(3.0) is True
    assert intensity.recent == 4


def test_old_restarts_leave_the_window() -> None:
    """A restart older than ``within`` seconds no longer counts."""
    intensity = RestartIntensity(1, 5.0)
    assert intensity.record(0.0) is False
    assert intensity.record(6.0) is False  # the one at 0.0 fell out of the window
    assert intensity.recent == 1
    assert intensity.record(10.0) is True  # 6.0 and 10.0 are within 5s
    assert intensity.recent == 2


def test_zero_restarts_allowed_means_the_first_one_is_too_many() -> None:
    """max_restarts=0: any restart exceeds the intensity."""
    assert RestartIntensity(0, 1.0).record(0.0) is True


@pytest.mark.parametrize(("max_restarts", "within"), [(-1, 1.0), (1, 0.0), (1, -2.0)])
def test_invalid_limits_are_refused(max_restarts: int, within: float) -> None:
    """A negative count or a non-positive window raises ValueError."""
    with pytest.raises(ValueError, match="max_restarts must be >= 0 and within > 0"):
        RestartIntensity(max_restarts, within)

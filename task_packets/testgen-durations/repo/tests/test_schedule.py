from datetime import datetime

import pytest

from timekit import next_run

NOW = datetime(2024, 5, 1, 12, 0)


def test_never_ran_is_due_now():
    assert next_run(None, "15m", NOW) == NOW


def test_due_after_interval():
    assert next_run(datetime(2024, 5, 1, 11, 50), "15m", NOW) == datetime(2024, 5, 1, 12, 5)


def test_behind_schedule_is_due_now():
    assert next_run(datetime(2024, 4, 30), "1h", NOW) == NOW


def test_zero_interval_refused():
    with pytest.raises(ValueError):
        next_run(NOW, "0s", NOW)

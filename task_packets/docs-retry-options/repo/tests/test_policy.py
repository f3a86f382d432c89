import pytest

from retrykit import RetryPolicy


def test_default_delays():
    assert list(RetryPolicy().delays()) == [0.5, 1.0]


def test_delays_grow_by_backoff():
    assert list(RetryPolicy(attempts=4, base_delay=1, backoff=3).delays()) == [1, 3, 9]


def test_max_delay_caps_each_wait():
    assert list(RetryPolicy(attempts=5, base_delay=1, max_delay=3).delays()) == [1, 2, 3, 3]


def test_single_attempt_never_waits():
    assert list(RetryPolicy(attempts=1).delays()) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_delay": -1}, {"backoff": 0.5}, {"base_delay": 5, "max_delay": 1}],
)
def test_invalid(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)

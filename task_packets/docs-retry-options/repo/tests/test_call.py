import pytest

from retrykit import RetryError, RetryPolicy, retry_call


class Flaky:
    def __init__(self, failures, exc=ConnectionError):
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, value="ok"):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return value


def test_returns_after_retries():
    waits = []
    fn = Flaky(2)
    assert retry_call(fn, "done", policy=RetryPolicy(attempts=3), sleep=waits.append) == "done"
    assert fn.calls == 3
    assert waits == [0.5, 1.0]


def test_gives_up():
    fn = Flaky(5)
    with pytest.raises(RetryError) as info:
        retry_call(fn, sleep=lambda s: None)
    assert info.value.attempts == 3
    assert isinstance(info.value.last, ConnectionError)


def test_retry_on_limits_what_is_retried():
    fn = Flaky(1, exc=KeyError)
    with pytest.raises(KeyError):
        retry_call(fn, retry_on=(ConnectionError,), sleep=lambda s: None)
    assert fn.calls == 1


def test_kwargs_passed_through():
    assert retry_call(Flaky(0), value=42) == 42

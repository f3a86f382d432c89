import pytest

from timekit import Stopwatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_elapsed_while_running_and_after_stop():
    clock = FakeClock()
    watch = Stopwatch(clock)
    watch.start()
    clock.now += 2.5
    assert watch.elapsed == 2.5
    assert watch.stop() == 2.5
    clock.now += 10
    assert watch.elapsed == 2.5


def test_laps():
    clock = FakeClock()
    watch = Stopwatch(clock)
    watch.start()
    clock.now += 1
    assert watch.lap() == 1
    clock.now += 3
    assert watch.lap() == 3
    assert watch.laps == [1, 3]


def test_misuse():
    watch = Stopwatch(FakeClock())
    with pytest.raises(RuntimeError):
        watch.stop()
    watch.start()
    with pytest.raises(RuntimeError):
        watch.start()

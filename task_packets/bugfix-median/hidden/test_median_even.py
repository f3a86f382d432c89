from stats import median


def test_even_count_averages_the_middle_pair():
    assert median([4, 1, 3, 2]) == 2.5


def test_even_count_unsorted_floats():
    assert median([10.0, -2.0, 7.5, 3.5]) == 5.5


def test_two_values():
    assert median([1, 2]) == 1.5


def test_odd_count_unchanged():
    assert median([5, 1, 9]) == 5

"""Hidden test: copied into the workspace only when the gate runs; the agent never sees it."""

import pytest
from wordcount import count_words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one  two", 2),
        ("one\ntwo\tthree", 3),
        ("  padded  ", 1),
        ("", 0),
        ("   ", 0),
    ],
)
def test_any_whitespace_separates_words(text, expected):
    assert count_words(text) == expected

"""Count words and find the most common ones."""

from __future__ import annotations

from collections import Counter


def count_words(text: str) -> int:
    """The number of words in ``text``; words are separated by whitespace."""
    return len(text.split(" "))


def top_words(text: str, n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` most common words (lower-cased) with their counts, most common first."""
    return Counter(word.lower() for word in text.split()).most_common(n)

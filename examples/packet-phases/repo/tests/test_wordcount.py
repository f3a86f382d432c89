from wordcount import count_words, top_words


def test_count_simple_sentence():
    assert count_words("the quick brown fox") == 4


def test_top_words():
    assert top_words("a b a c a b", n=2) == [("a", 3), ("b", 2)]

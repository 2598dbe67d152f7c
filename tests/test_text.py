"""numlstm.text: vocabulary and padding for token sequences."""

import numpy as np
import pytest

from numlstm import text


def test_vocabulary_ranks_by_frequency_and_reserves_pad_and_oov():
    vocab = text.Vocabulary.fit(["b a b", "c b a", "B!"])
    assert vocab.tokens == ["b", "a", "c", "!"]  # lower-cased, punctuation its own token
    assert len(vocab) == 6
    assert vocab.encode(["a b d", ""]) == [[3, 2, 1], []]
    assert vocab.decode([0, 0, 3, 2, 1]) == "a b <oov>"


def test_vocabulary_limits_and_characters():
    texts = ["aaab", "abc"]
    assert text.Vocabulary.fit(texts, level="char", max_size=2).tokens == ["a", "b"]
    assert text.Vocabulary.fit(texts, level="char", min_count=2).tokens == ["a", "b"]
    chars = text.Vocabulary.fit(texts, level="char", lower=False)
    assert chars.decode(chars.encode(["cab"])[0]) == "cab"


def test_pad_and_truncate_like_keras():
    seqs = [[1, 2, 3], [4], []]
    np.testing.assert_array_equal(text.pad(seqs), [[1, 2, 3], [0, 0, 4], [0, 0, 0]])
    np.testing.assert_array_equal(text.pad(seqs, 2), [[2, 3], [0, 4], [0, 0]])
    np.testing.assert_array_equal(text.pad(seqs, 2, padding="post", truncating="post"), [[1, 2], [4, 0], [0, 0]])
    assert text.pad(seqs).dtype == np.int64


@pytest.mark.parametrize("call, error, match", [
    (lambda: text.Vocabulary.fit("one string"), TypeError, "list of strings, got one string"),
    (lambda: text.Vocabulary.fit(["ok", 3]), TypeError, "strings only, got int 3"),
    (lambda: text.Vocabulary.fit(["a"], level="byte"), ValueError, "level must be 'word' or 'char'"),
    (lambda: text.Vocabulary.fit(["a"], max_size=0), ValueError, "max_size must be a positive int"),
    (lambda: text.Vocabulary.fit(["a"], min_count=0), ValueError, "min_count must be an int >= 1"),
    (lambda: text.Vocabulary.fit(["a"]).decode([0, 9]), ValueError, r"ids must lie in 0..2"),
    (lambda: text.Vocabulary.fit(["a"]).decode([0.5]), TypeError, "1-D sequence of ints"),
    (lambda: text.pad([[1.5, 2]]), TypeError, r"sequences\[0\] must be a 1-D sequence of ints"),
    (lambda: text.pad([[1]], maxlen=0), ValueError, "maxlen must be a positive int"),
    (lambda: text.pad([[1]], padding="mid"), ValueError, "padding must be 'pre' or 'post'"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

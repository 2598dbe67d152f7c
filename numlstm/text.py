"""Text to integer sequences: a vocabulary and padding, for sequence classification.

:class:`Vocabulary` maps tokens (whitespace-separated words, or characters) to
integer ids, most frequent first; id 0 is reserved for padding and id 1 for
tokens it has not seen. :func:`pad` makes a rectangular ``(samples, time)``
integer array of the encoded sentences, as Keras' ``pad_sequences`` does
(padding and truncation at the start by default, so the last token is always
the last step).

>>> from numlstm import text
>>> vocab = text.Vocabulary.fit(["the film was great", "the plot was thin"])
>>> vocab.encode(["the film was thin", "a great film"])
[[2, 4, 3, 7], [1, 5, 4]]
>>> text.pad(vocab.encode(["the film was thin", "a great film"]), maxlen=5)
array([[0, 2, 4, 3, 7],
       [0, 0, 1, 5, 4]])
>>> vocab.decode([0, 1, 5, 4])
'<oov> great film'
"""

from __future__ import annotations

import collections
import re

import numpy as np

__all__ = ["Vocabulary", "pad", "PAD", "OOV"]

PAD, OOV = 0, 1  # reserved ids: padding, and a token outside the vocabulary
_SPECIAL = ("<pad>", "<oov>")


def _check_texts(texts, name="texts"):
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got one string {texts[:30]!r}. Wrap it: [{name}].")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}.") from None
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must hold strings only, got {type(bad).__name__} {bad!r}. Convert with str() "
                        "or drop it.")
    return texts


class Vocabulary:
    """Token <-> id mapping; build one with :meth:`fit`.

    Parameters
    ----------
    tokens : list of str
        The vocabulary, most frequent first; token ``tokens[i]`` gets id ``i + 2``.
    level : {"word", "char"}
        Words split on whitespace (punctuation kept apart from words), or
        single characters.
    lower : bool
        Lower-case text before splitting.
    """

    def __init__(self, tokens, level="word", lower=True):
        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}.")
        self.tokens = list(tokens)
        self.level = level
        self.lower = bool(lower)
        self._ids = {t: i + 2 for i, t in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts, *, level="word", lower=True, max_size=None, min_count=1):
        """A vocabulary of the tokens in ``texts``, most frequent first (ties in order of
        first appearance), at most ``max_size`` of them, each seen ``min_count`` times."""
        texts = _check_texts(texts)
        if max_size is not None and (not isinstance(max_size, (int, np.integer)) or isinstance(max_size, bool)
                                     or max_size < 1):
            raise ValueError(f"max_size must be a positive int or None, got {max_size!r}.")
        if not isinstance(min_count, (int, np.integer)) or isinstance(min_count, bool) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}.")
        vocab = cls([], level=level, lower=lower)
        counts = collections.Counter()
        for t in texts:
            counts.update(vocab.split(t))
        ranked = [tok for tok, n in counts.most_common() if n >= min_count]  # stable for ties
        vocab = cls(ranked[:max_size], level=level, lower=lower)
        return vocab

    def __len__(self):
        """Ids in use, the two reserved ones included: the ``vocab_size`` of an embedding."""
        return len(self.tokens) + 2

    def split(self, text):
        """The tokens of one string."""
        if self.lower:
            text = text.lower()
        if self.level == "char":
            return list(text)
        return re.findall(r"\w+|[^\w\s]", text)

    def encode(self, texts):
        """A list of id lists, one per string (unknown tokens get id 1)."""
        return [[self._ids.get(tok, OOV) for tok in self.split(t)] for t in _check_texts(texts)]

    def decode(self, ids):
        """The text of one id sequence (padding dropped)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError(f"ids must be a 1-D sequence of ints, got {ids!r}.")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in 0..{len(self) - 1} for this vocabulary, got {ids.min()}..{ids.max()}.")
        words = [_SPECIAL[i] if i < 2 else self.tokens[i - 2] for i in ids.tolist() if i != PAD]
        return ("" if self.level == "char" else " ").join(words)


def pad(sequences, maxlen=None, *, padding="pre", truncating="pre", value=PAD):
    """Integer sequences as one ``(samples, maxlen)`` int64 array.

    ``maxlen`` defaults to the longest sequence. Shorter sequences are padded
    with ``value`` at the start (``padding="pre"``) or end (``"post"``);
    longer ones lose their first (``truncating="pre"``) or last (``"post"``)
    tokens. Pre-padding keeps every sentence's last token at the last step.
    """
    for name, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {v!r}.")
    seqs = []
    for i, s in enumerate(sequences):
        a = np.asarray(s)
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise TypeError(f"sequences[{i}] must be a 1-D sequence of ints, got {s!r}. Encode text first, e.g. "
                            "Vocabulary.fit(texts).encode(texts).")
        seqs.append(a.astype(np.int64))
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    elif not isinstance(maxlen, (int, np.integer)) or isinstance(maxlen, bool) or maxlen < 1:
        raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}.")
    out = np.full((len(seqs), maxlen), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if len(s):
            if padding == "pre":
                out[i, maxlen - len(s):] = s
            else:
                out[i, :len(s)] = s
    return out

"""``set_random_seed``, ``pad_sequences`` and ``to_categorical``, as in ``keras.utils``.

numlstm keeps no global random state: every model owns a NumPy Generator for
its initial weights, shuffling and dropout. After ``set_random_seed(seed)``
those Generators are drawn, in order of creation, from one seed sequence, so a
program that makes the same models in the same order gets the same results.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["pad_sequences", "set_random_seed", "to_categorical"]

_state = {"sequence": None}


def set_random_seed(seed):
    """Seed the Generators of the numlstm.keras models made after this call."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be an int >= 0, got {seed!r}.")
    _state["sequence"] = np.random.SeedSequence(int(seed))


def new_generator():
    """A Generator for a new model: from the seed sequence when one is set, else fresh entropy."""
    sequence = _state["sequence"]
    return np.random.default_rng(None if sequence is None else sequence.spawn(1)[0])


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0):
    """``keras.utils.pad_sequences`` for token ids: lists of ints to one (samples,
    maxlen) array, padded and truncated at the start by default.

    >>> pad_sequences([[3, 4], [5, 6, 7]])
    array([[0, 3, 4],
           [5, 6, 7]], dtype=int32)
    """
    from numlstm import text

    if np.dtype(dtype).kind not in "iu":
        raise ValueError(f"pad_sequences(dtype={dtype!r}) is not supported; token ids are integers, e.g. "
                         "dtype='int32'.")
    if value != int(value):
        raise ValueError(f"pad_sequences(value={value!r}) must be a whole number (a token id).")
    return text.pad(sequences, maxlen, padding=padding, truncating=truncating, value=int(value)).astype(dtype)


def to_categorical(x, num_classes=None):
    """``keras.utils.to_categorical``: class ids to one-hot rows (float32).

    >>> to_categorical([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    ids = np.asarray(x)
    if ids.dtype.kind == "f" and ids.size and np.all(ids == np.round(ids)):
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in "iu" or (ids.size and ids.min() < 0):
        raise ValueError(f"to_categorical needs class ids 0, 1, 2, ..., got {np.asarray(x)!r:.80}.")
    count = int(ids.max()) + 1 if num_classes is None else int(num_classes)
    if ids.size and ids.max() >= count:
        raise ValueError(f"to_categorical got the class id {int(ids.max())} but num_classes={count}.")
    return np.eye(count, dtype=np.float32)[ids.reshape(-1)].reshape(ids.shape + (count,))

"""``set_random_seed``, as ``keras.utils.set_random_seed``.

numlstm keeps no global random state: every model owns a NumPy Generator for
its initial weights, shuffling and dropout. After ``set_random_seed(seed)``
those Generators are drawn, in order of creation, from one seed sequence, so a
program that makes the same models in the same order gets the same results.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["set_random_seed"]

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

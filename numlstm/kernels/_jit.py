"""Compile options shared by every CPU kernel."""

import os

CACHE_ENV = "NUMLSTM_CACHE"


def cache_enabled():
    """On-disk caching of compiled kernels, opt-in through ``NUMLSTM_CACHE=1``."""
    return os.environ.get(CACHE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# Everything but "nnan"/"ninf": a diverging fit must still see its NaNs and
# infinities, so the loss check can stop it. "reassoc" lets reductions
# vectorize; "arcp"/"contract" give reciprocal and FMA forms.
FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}

# error_model="numpy": a float division by zero gives inf, as in NumPy, instead
# of a Python exception whose check per element stops every loop vectorizing.
CPU_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy", nogil=True, cache=cache_enabled())

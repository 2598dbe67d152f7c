"""Numba kernels: the only modules with ``@njit`` / ``@cuda.jit``."""

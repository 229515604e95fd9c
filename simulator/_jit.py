"""The one place Numba's flags live. Kernels compile on first call (never at import) and cache to disk."""
import numba

jit = numba.njit(cache=True, nogil=True)

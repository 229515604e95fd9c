"""The one place Numba's flags live. Kernels compile on first call (never at import) and cache to disk."""
import numba

jit = numba.njit(cache=True, nogil=True)
#: a small kernel inlined into its callers at Numba's level (a test in a hot loop: no call left)
jit_inline = numba.njit(cache=True, nogil=True, inline="always")

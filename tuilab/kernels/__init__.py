"""Numba kernels: @njit functions over NumPy arrays only (no classes, no I/O).

Every kernel is compiled with cache=True (a second launch loads machine code from
disk) and nogil=True (the training thread runs while the UI thread draws).
"""

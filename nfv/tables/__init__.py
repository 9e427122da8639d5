"""Dataplane data structures with Numba kernels."""

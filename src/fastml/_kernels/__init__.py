"""Compiled kernels of fastml (private: import the public modules instead)."""

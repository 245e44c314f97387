"""Demos run by ``fastml demo`` (one module per family, see fastml._demo)."""

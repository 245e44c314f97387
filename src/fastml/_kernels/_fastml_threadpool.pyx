"""An empty compiled module: the shared object by whose file name threadpoolctl finds
fastml (``fastml._parallel`` registers a threadpoolctl controller matching it)."""

"""Implementation of :mod:`statediff_units` (private: import from the package)."""

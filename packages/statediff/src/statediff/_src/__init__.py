"""Private implementation of :mod:`statediff`; import from the package instead."""

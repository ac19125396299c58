"""Private implementation of :mod:`stategraph`; import from the package instead."""

"""Private implementation of :mod:`statejax`; import from the package instead."""

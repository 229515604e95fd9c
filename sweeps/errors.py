"""Exceptions of the sweeps package."""


class SweepError(ValueError):
    """Base class of every error the sweeps package raises on bad input."""


class SweepSpecError(SweepError):
    """A sweep spec that is not valid; the message names the key path and what was expected."""


class StoreError(SweepError):
    """A results store that cannot be opened or read."""

"""Exceptions of the accel package."""


class AccelError(ValueError):
    """Base class of every error raised on a bad accelerator description."""


class AccelConfigError(AccelError):
    """A key of an accelerator description has the wrong type or value; the message names its path."""


class FpgaFitError(AccelError):
    """The design does not fit the FPGA budget it declares."""

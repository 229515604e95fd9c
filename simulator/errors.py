"""Exceptions of the simulator package."""


class SimulationError(ValueError):
    """A workload and accelerator that cannot be simulated as asked (the message says why)."""

"""Exceptions raised by the workloads package.

Every message names the input it is about (model, layer, op, file and line, pattern text) and what
was expected, so a user can fix the input without reading a traceback.
"""


class WorkloadError(ValueError):
    """Base class of every error the workloads package raises on bad input."""


class PatternError(WorkloadError):
    """A sparsity pattern string or parameter that is not valid."""


class MaskError(WorkloadError):
    """A mask that does not fit the weight it belongs to."""


class TraceError(WorkloadError):
    """The model could not be traced (its forward failed, or its inputs are not usable)."""


class UnsupportedOpError(TraceError):
    """The traced model runs an op whose arithmetic the tracer does not model.

    Pass the op's name in ``ignore_ops=`` to list it as non-GEMM work instead.
    """

    def __init__(self, op: str, module: str, detail: str = ""):
        self.op = op
        self.module = module
        where = module or "<root module>"
        msg = (f"op {op} in module '{where}' does arithmetic the tracer does not model"
               f"{': ' + detail if detail else ''}; pass ignore_ops=['{op}'] to list it as non-GEMM work")
        super().__init__(msg)


class TopologyError(WorkloadError):
    """A SCALE-Sim topology CSV that cannot be read or written."""


class ModelNotFoundError(WorkloadError):
    """A model name or path:function that does not resolve to a model builder."""

"""hdl: Verilog N:M units (rtl/), cocotb testbenches (tb/), the runner that builds them, Yosys synthesis."""
from .runner import HdlError, check_nm_params, simulator_missing

__all__ = ["HdlError", "check_nm_params", "simulator_missing"]

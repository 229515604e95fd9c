"""hdl: Verilog N:M units, cocotb testbenches and calibration of simulator parameters."""

"""simulator: Workload x Accelerator -> SimResult (per-layer cycles, stalls, traffic, energy)."""

"""The columns of a fast-engine result row (:attr:`SimResult.layers`), importable without NumPy or
Numba (a results store checks its schema against them before anything is simulated)."""

COLUMNS = ["name", "kind", "phase", "m", "n", "k", "groups", "pattern", "density", "mode", "folds", "cycles",
           "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs", "weight_loads", "utilization",
           "sram_bytes", "dram_bytes", "meta_bytes", "energy_pj", "energy_mac_pj", "energy_sram_pj",
           "energy_dram_pj", "energy_meta_pj", "energy_static_pj",
           "loop_order", "tile_m", "tile_n", "tile_k", "dram_act_bytes", "dram_weight_bytes", "dram_out_bytes",
           "compulsory_bytes"]

"""accel: accelerator descriptions (YAML or preset) -> validated, frozen Accelerator objects."""

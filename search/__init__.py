"""search: Workload x Accelerator x objective -> masks and hardware on a Pareto front."""

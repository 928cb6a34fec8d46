// Deterministic workloads of shared/workloads.md.
import AutoDiff

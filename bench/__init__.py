"""Benchmarks of this project, run from the repository root: `python -m bench.steps` (`make bench`), the CPU
comparisons `bench/demo_pair.sh`, and the GPU checks `bench/gpu_check.sh`, `bench/gpu_learning_check.sh` and
`bench/gpu_session.sh`."""

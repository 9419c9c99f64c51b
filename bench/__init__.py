"""berth's benchmarks: `make bench` runs bench/run.py, which runs every module listed there."""

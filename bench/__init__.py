"""Benchmarks (`make bench`): measured ratios written to bench/RESULTS.md, no timed assertions."""

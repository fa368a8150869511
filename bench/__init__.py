"""Benchmarks (run by bin/bench-* scripts; not tests)."""

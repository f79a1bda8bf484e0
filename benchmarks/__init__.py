"""Benchmark suite of socketio-redis-async: ``python -m benchmarks [--quick]`` (see README.md)."""

"""Benchmarks for trading-otel: ``python -m bench`` prints side-by-side figures."""

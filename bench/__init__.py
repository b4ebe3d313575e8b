"""Benchmarks (issue 7): `python -m bench` runs them all; see bench/__main__.py."""

"""Benchmarks that print figures: ``python -m benchmarks [NAME ...]`` (``nox -s bench``).

Speed goals are measured here, never asserted by timed tests.
"""

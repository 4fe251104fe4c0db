"""Drills: parts of the running system broken for real, and what was observed (``nox -s drills``).

Not part of the suite (``pytest`` alone never collects this folder; ``--drills`` does): each
drill starts its own processes, breaks one, and records figures that ``python -m
tests.drills.report`` turns into the table of ``docs/reliability.md``.
"""

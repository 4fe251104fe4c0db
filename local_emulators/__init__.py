"""The local profile: every part of podscribe's GCP shape, started on one machine.

``python -m local_emulators up|down|status|logs|demo``. The same helpers start the
emulators for the test suite, so tests and the demo run the very same wiring.
"""

"""The transcription job: ``python -m vertex_job --job-id <id>``.

The Vertex AI CustomJob container runs it on a GPU; the local profile runs the very same
command as a process on the CPU. :func:`vertex_job.runner.run_job` does the work.
"""

from vertex_job.runner import JobOutcome, run_job

__all__ = ["JobOutcome", "run_job"]

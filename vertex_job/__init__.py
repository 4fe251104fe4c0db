"""The transcription job's container entry point: ``python -m vertex_job --job-id <id>``.

The Vertex AI CustomJob container runs it on a GPU; the local profile runs the very same
command as a process on the CPU. :func:`podscribe.jobs.worker.run_job` does the work.
"""

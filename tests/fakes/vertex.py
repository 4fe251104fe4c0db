"""A fake Vertex AI JobService at the wire: a gRPC server on 127.0.0.1.

The real ``google-cloud-aiplatform`` client (``JobServiceClient`` over an insecure channel,
see ``PODSCRIBE_VERTEX_API_ENDPOINT``) sends its real ``CreateCustomJob``, ``GetCustomJob``
and ``ListCustomJobs`` requests here. A generic handler decodes them with the aiplatform_v1
protos (every field the launcher sets, the job's ``psc_interface_config`` included), records
them, and answers as the test scripted: a created job, a refusal with a
status code and message (``RESOURCE_EXHAUSTED`` "resources are insufficient", ``UNAVAILABLE``),
or a job state (``JOB_STATE_FAILED`` with an error message) for later reads.

    with FakeVertex() as vertex:
        vertex.refuse_creates(job_id, Refusal(grpc.StatusCode.UNAVAILABLE, "try later"))
        settings = load_settings(vertex_api_endpoint=vertex.endpoint, ...)
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import deque
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import timestamp_pb2

SERVICE = "google.cloud.aiplatform.v1.JobService"
JOB_ID_LABEL = "podscribe-job-id"


def _copy(job: aiplatform_v1.CustomJob) -> aiplatform_v1.CustomJob:
    copied: aiplatform_v1.CustomJob = aiplatform_v1.CustomJob.deserialize(
        aiplatform_v1.CustomJob.serialize(job)
    )
    return copied


@dataclass(frozen=True)
class Refusal:
    """An error answer: the gRPC status code and its message."""

    code: grpc.StatusCode
    message: str


CAPACITY = Refusal(
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    "The following resources are insufficient in region: NVIDIA_L4. Please try another region.",
)
UNAVAILABLE = Refusal(grpc.StatusCode.UNAVAILABLE, "Vertex AI is unavailable; try again later")


@dataclass(frozen=True)
class RecordedCreate:
    """One CreateCustomJob request as the server decoded it (refused or not)."""

    parent: str
    custom_job: aiplatform_v1.CustomJob
    refused: Refusal | None

    @property
    def region(self) -> str:
        return self.parent.rsplit("/", 1)[1]

    @property
    def job_id(self) -> str | None:
        return self.custom_job.labels.get(JOB_ID_LABEL)


class FakeVertex:
    """The fake JobService; use as a context manager, or ``start()``/``stop()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0
        self.creates: list[RecordedCreate] = []
        self.gets: list[str] = []
        self.lists: list[tuple[str, str]] = []
        self._jobs: dict[str, aiplatform_v1.CustomJob] = {}
        self._job_refusals: dict[str, deque[Refusal]] = {}
        self._region_refusals: dict[str, Refusal] = {}
        self.list_refusal: Refusal | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeVertex:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {
            "CreateCustomJob": grpc.unary_unary_rpc_method_handler(
                self._create,
                request_deserializer=aiplatform_v1.CreateCustomJobRequest.deserialize,
                response_serializer=aiplatform_v1.CustomJob.serialize,
            ),
            "GetCustomJob": grpc.unary_unary_rpc_method_handler(
                self._get,
                request_deserializer=aiplatform_v1.GetCustomJobRequest.deserialize,
                response_serializer=aiplatform_v1.CustomJob.serialize,
            ),
            "ListCustomJobs": grpc.unary_unary_rpc_method_handler(
                self._list,
                request_deserializer=aiplatform_v1.ListCustomJobsRequest.deserialize,
                response_serializer=aiplatform_v1.ListCustomJobsResponse.serialize,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> FakeVertex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, for ``PODSCRIBE_VERTEX_API_ENDPOINT``."""
        return f"127.0.0.1:{self.port}"

    # --- scripting ---------------------------------------------------------------------
    def refuse_creates(self, job_id: str, *refusals: Refusal) -> None:
        """The next creates for this job get these errors, in order; later ones succeed."""
        with self._lock:
            self._job_refusals.setdefault(job_id, deque()).extend(refusals)

    def refuse_region(self, region: str, refusal: Refusal = CAPACITY) -> None:
        """Every create in this region gets this error."""
        with self._lock:
            self._region_refusals[region] = refusal

    def set_state(self, name: str, state: int, message: str = "") -> None:
        """What later reads of the CustomJob ``name`` report (``state``: a ``JobState``)."""
        with self._lock:
            job = self._jobs[name]
            job.state = aiplatform_v1.JobState(state)
            if message:
                job.error = {"code": 9, "message": message}

    # --- reading the record ------------------------------------------------------------
    def creates_for(self, job_id: str, *, accepted_only: bool = True) -> list[RecordedCreate]:
        with self._lock:
            return [
                create
                for create in self.creates
                if create.job_id == job_id and (create.refused is None or not accepted_only)
            ]

    def job(self, name: str) -> aiplatform_v1.CustomJob:
        with self._lock:
            return _copy(self._jobs[name])

    # --- the RPCs ------------------------------------------------------------------------
    def _create(self, request: aiplatform_v1.CreateCustomJobRequest, context: Any) -> Any:
        job = request.custom_job
        region = request.parent.rsplit("/", 1)[1]
        with self._lock:
            refusal = self._region_refusals.get(region)
            queue = self._job_refusals.get(job.labels.get(JOB_ID_LABEL, ""))
            if refusal is None and queue:
                refusal = queue.popleft()
            self.creates.append(RecordedCreate(request.parent, job, refusal))
            if refusal is None:
                name = f"{request.parent}/customJobs/{uuid.uuid4().int % 10**18}"
                created = aiplatform_v1.CustomJob.deserialize(
                    aiplatform_v1.CustomJob.serialize(job)
                )
                created.name = name
                created.state = aiplatform_v1.JobState.JOB_STATE_PENDING
                now = timestamp_pb2.Timestamp()
                now.GetCurrentTime()
                created.create_time = now
                self._jobs[name] = created
        if refusal is not None:
            context.abort(refusal.code, refusal.message)
        return created

    def _get(self, request: aiplatform_v1.GetCustomJobRequest, context: Any) -> Any:
        with self._lock:
            self.gets.append(request.name)
            job = self._jobs.get(request.name)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"CustomJob {request.name} not found")
        return job

    def _list(self, request: aiplatform_v1.ListCustomJobsRequest, context: Any) -> Any:
        wanted = dict(re.findall(r'labels\.([\w-]+)\s*=\s*"([^"]*)"', request.filter))
        with self._lock:
            self.lists.append((request.parent, request.filter))
            refusal = self.list_refusal
        if refusal is not None:
            context.abort(refusal.code, refusal.message)
        with self._lock:
            found = [
                job
                for name, job in self._jobs.items()
                if name.startswith(request.parent + "/")
                and all(job.labels.get(key) == value for key, value in wanted.items())
            ]
        return aiplatform_v1.ListCustomJobsResponse(custom_jobs=found)

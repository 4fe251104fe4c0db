"""The Vertex AI launcher, through the real aiplatform client, against the fake at the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import aiplatform_v1

from podscribe.errors import CapacityError, LaunchError, SettingsError
from podscribe.jobs import Job
from podscribe.jobs.launchers import LauncherStatus, launcher_for
from podscribe.jobs.launchers.kubernetes import KubernetesLauncher
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.jobs.launchers.vertex import (
    Placement,
    VertexLauncher,
    job_timeout_seconds,
    placements,
)
from podscribe.settings import Settings, load_settings
from tests.fakes.jobs import dispatched_job
from tests.fakes.vertex import CAPACITY, UNAVAILABLE, FakeVertex, Refusal

IMAGE = "us-central1-docker.pkg.dev/podscribe-prod/podscribe/vertex-job:1.4.2"


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


def make_settings(vertex: FakeVertex, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "project_id": "podscribe-prod",
        "region": "us-central1",
        "vertex_image": IMAGE,
        "vertex_api_endpoint": vertex.endpoint,
        "vertex_service_account": "vertex-job@podscribe-prod.iam.gserviceaccount.com",
        "vertex_network_attachment": "podscribe-vertex-jobs",
        "public_base_url": "https://transcripts.example.com/api",
        "cloudsql_connection_name": "podscribe-prod:us-central1:podscribe",
        "db_user": "dispatch@podscribe-prod.iam",
        "db_name": "podscribe",
        "db_ip_type": "private",
        "bucket": "podscribe-prod-transcripts",
        "lease_seconds": 300,
    }
    values.update(overrides)
    return load_settings(**values)


def test_one_launch_is_one_custom_job_with_every_field_set(vertex: FakeVertex) -> None:
    settings = make_settings(vertex, vertex_persistent_resource_id="podscribe-warm-l4")
    job = dispatched_job(duration=1800.0)

    result = VertexLauncher(settings).launch(job)

    [create] = vertex.creates_for(job.id)
    assert result.ref.startswith("projects/podscribe-prod/locations/us-central1/customJobs/")
    assert result.ref == vertex.job(result.ref).name
    assert not result.adopted
    assert create.parent == "projects/podscribe-prod/locations/us-central1"
    custom = create.custom_job
    assert custom.display_name == f"podscribe-{job.id}-a1"
    assert dict(custom.labels) == {
        "app": "podscribe",
        "podscribe-job-id": job.id,
        "podscribe-attempt": "1",
    }
    spec = custom.job_spec
    assert len(spec.worker_pool_specs) == 1
    pool = spec.worker_pool_specs[0]
    assert pool.replica_count == 1
    assert pool.machine_spec.machine_type == "g2-standard-8"
    assert pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_L4
    assert pool.machine_spec.accelerator_count == 1
    assert pool.container_spec.image_uri == IMAGE
    assert list(pool.container_spec.args) == ["--job-id", job.id]
    env = {variable.name: variable.value for variable in pool.container_spec.env}
    assert env == {
        "PODSCRIBE_ENV": "production",
        "PODSCRIBE_PROJECT_ID": "podscribe-prod",
        "PODSCRIBE_REGION": "us-central1",
        "PODSCRIBE_BUCKET": "podscribe-prod-transcripts",
        "CLOUDSQL_CONNECTION_NAME": "podscribe-prod:us-central1:podscribe",
        "PODSCRIBE_DB_USER": "vertex-job@podscribe-prod.iam",
        "PODSCRIBE_DB_NAME": "podscribe",
        "PODSCRIBE_DB_IP_TYPE": "private",
        "PODSCRIBE_LEASE_SECONDS": "300",
        "PODSCRIBE_LOG_LEVEL": "INFO",
        "WHISPER_DEVICE": "cuda",
        "WHISPER_COMPUTE_TYPE": "float16",
        "PODSCRIBE_DIARIZATION": "on",  # dispatch's deployment setting reaches the job
        # Warm workers: dispatch's settings reach the job (0 by default: one episode).
        "PODSCRIBE_WORKER_IDLE_SECONDS": "0",
        "PODSCRIBE_WORKER_MAX_SECONDS": "14400",
        "PODSCRIBE_WORKER_POLL_SECONDS": "1.0",
        # Transcript links in the job's webhooks are absolute.
        "PODSCRIBE_PUBLIC_BASE_URL": "https://transcripts.example.com/api",
    }
    assert spec.service_account == "vertex-job@podscribe-prod.iam.gserviceaccount.com"
    # The job joins the VPC through a PSC interface (its route to Cloud SQL), not by peering.
    assert spec.psc_interface_config.network_attachment == "podscribe-vertex-jobs"
    assert spec.network == ""
    assert spec.persistent_resource_id == "podscribe-warm-l4"
    assert spec.scheduling.timeout.total_seconds() == 1800 + 1200
    assert spec.scheduling.restart_job_on_worker_restart is False


def test_every_placement_joins_through_the_attachment_of_its_region(vertex: FakeVertex) -> None:
    settings = make_settings(
        vertex, region="us-east4", vertex_fallbacks="europe-west4/g2-standard-8/NVIDIA_L4"
    )
    vertex.refuse_region("us-east4", CAPACITY)
    job = dispatched_job()
    VertexLauncher(settings).launch(job)
    tried = vertex.creates_for(job.id, accepted_only=False)
    assert [create.region for create in tried] == ["us-east4", "europe-west4"]
    # One name: Vertex resolves it in the region it places the job, where Terraform made one.
    assert {
        create.custom_job.job_spec.psc_interface_config.network_attachment for create in tried
    } == {"podscribe-vertex-jobs"}


def test_peering_is_still_possible_but_not_together_with_an_attachment(
    vertex: FakeVertex,
) -> None:
    peered = make_settings(
        vertex,
        vertex_network_attachment=None,
        vertex_network="projects/123456/global/networks/podscribe",
    )
    job = dispatched_job()
    VertexLauncher(peered).launch(job)
    spec = vertex.creates_for(job.id)[0].custom_job.job_spec
    assert spec.network == "projects/123456/global/networks/podscribe"
    assert not spec.psc_interface_config.network_attachment
    both = make_settings(vertex, vertex_network="projects/123456/global/networks/podscribe")
    with pytest.raises(SettingsError, match="exclusive"):
        VertexLauncher(both).launch(dispatched_job())


def test_the_timeout_follows_the_episode_and_is_bounded(vertex: FakeVertex) -> None:
    settings = make_settings(vertex, max_episode_seconds=4 * 3600)
    assert job_timeout_seconds(dispatched_job(duration=600.0), settings) == 600 + 1200
    assert job_timeout_seconds(dispatched_job(episode={"duration_seconds": 3000}), settings) == 4200
    assert job_timeout_seconds(dispatched_job(), settings) == 4 * 3600 + 1200
    assert job_timeout_seconds(dispatched_job(duration=99 * 3600.0), settings) == 4 * 3600 + 1200
    # A warm worker takes episodes for its working time, finishes the last and idles once.
    warm = make_settings(vertex, max_episode_seconds=4 * 3600, worker_idle_seconds=300)
    expected = 14400 + 4 * 3600 + 300 + 1200
    assert job_timeout_seconds(dispatched_job(duration=600.0), warm) == expected


def test_a_t4_machine_is_configurable(vertex: FakeVertex) -> None:
    settings = make_settings(
        vertex, vertex_machine_type="n1-standard-8", vertex_accelerator_type="NVIDIA_TESLA_T4"
    )
    job = dispatched_job()
    VertexLauncher(settings).launch(job)
    machine = vertex.creates_for(job.id)[0].custom_job.job_spec.worker_pool_specs[0].machine_spec
    assert machine.machine_type == "n1-standard-8"
    assert machine.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_T4


def test_capacity_refusals_fall_back_in_order(vertex: FakeVertex) -> None:
    settings = make_settings(
        vertex,
        region="us-east4",
        vertex_persistent_resource_id="podscribe-warm-l4",
        vertex_fallbacks="us-east4/g2-standard-8/NVIDIA_L4,europe-west4/g2-standard-8/NVIDIA_L4,"
        "us-west1/n1-standard-8/NVIDIA_TESLA_T4",
    )
    vertex.refuse_region("us-east4", CAPACITY)
    vertex.refuse_region(
        "europe-west4",
        Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "Quota exceeded for custom_model_training_nvidia_l4_gpus",
        ),
    )
    job = dispatched_job()

    result = VertexLauncher(settings).launch(job)

    tried = vertex.creates_for(job.id, accepted_only=False)
    assert [create.region for create in tried] == ["us-east4", "europe-west4", "us-west1"]
    assert [create.refused is not None for create in tried] == [True, True, False]
    final = tried[-1].custom_job.job_spec
    assert final.worker_pool_specs[0].machine_spec.machine_type == "n1-standard-8"
    assert (
        final.worker_pool_specs[0].machine_spec.accelerator_type
        == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_T4
    )
    # The persistent resource lives in the configured region only.
    assert tried[0].custom_job.job_spec.persistent_resource_id == "podscribe-warm-l4"
    assert final.persistent_resource_id == ""
    assert result.ref.startswith("projects/podscribe-prod/locations/us-west1/customJobs/")
    assert result.detail == "us-west1/n1-standard-8/NVIDIA_TESLA_T4"


def test_no_capacity_anywhere_is_a_capacity_error(vertex: FakeVertex) -> None:
    settings = make_settings(
        vertex, region="asia-east1", vertex_fallbacks="asia-southeast1/g2-standard-8/NVIDIA_L4"
    )
    vertex.refuse_region("asia-east1")
    vertex.refuse_region("asia-southeast1")
    job = dispatched_job()
    with pytest.raises(
        CapacityError, match=r"asia-east1.*resources are insufficient.*asia-southeast1"
    ):
        VertexLauncher(settings).launch(job)
    assert len(vertex.creates_for(job.id, accepted_only=False)) == 2


def test_an_unavailable_service_is_a_launch_error_without_blind_retries(vertex: FakeVertex) -> None:
    settings = make_settings(vertex, vertex_fallbacks="europe-west4/g2-standard-8/NVIDIA_L4")
    job = dispatched_job()
    vertex.refuse_creates(job.id, UNAVAILABLE)
    with pytest.raises(LaunchError, match="unavailable") as raised:
        VertexLauncher(settings).launch(job)
    assert not isinstance(raised.value, CapacityError)
    # One create, no fallback: UNAVAILABLE says nothing about GPUs.
    assert len(vertex.creates_for(job.id, accepted_only=False)) == 1


def test_status_reports_the_custom_jobs_state_and_reason(vertex: FakeVertex) -> None:
    launcher = VertexLauncher(make_settings(vertex))
    ref = launcher.launch(dispatched_job()).ref
    assert launcher.status(ref).state is LauncherStatus.PENDING
    vertex.set_state(ref, aiplatform_v1.JobState.JOB_STATE_RUNNING)
    assert launcher.status(ref).state is LauncherStatus.RUNNING
    vertex.set_state(
        ref,
        aiplatform_v1.JobState.JOB_STATE_FAILED,
        "The replica workerpool0-0 exited with a non-zero status of 1.",
    )
    failed = launcher.status(ref)
    assert failed.state is LauncherStatus.FAILED
    assert failed.message == "The replica workerpool0-0 exited with a non-zero status of 1."
    vertex.set_state(ref, aiplatform_v1.JobState.JOB_STATE_CANCELLED)
    assert launcher.status(ref).state is LauncherStatus.CANCELLED
    assert vertex.gets.count(ref) == 4
    gone = launcher.status("projects/podscribe-prod/locations/us-central1/customJobs/404")
    assert gone.state is LauncherStatus.CANCELLED
    assert launcher.status("nonsense").state is LauncherStatus.UNKNOWN


def test_a_retried_launch_adopts_the_live_custom_job_of_an_earlier_attempt(
    vertex: FakeVertex,
) -> None:
    launcher = VertexLauncher(make_settings(vertex))
    first = dispatched_job(attempts=1)
    earlier = launcher.launch(first).ref
    again = launcher.launch(
        Job(**{**first.__dict__, "attempts": 2})  # the same job, its answer lost, claimed again
    )
    assert again.adopted
    assert again.ref == earlier
    assert len(vertex.creates_for(first.id)) == 1
    assert vertex.lists[-1] == (
        "projects/podscribe-prod/locations/us-central1",
        f'labels.podscribe-job-id="{first.id}"',
    )
    # A failed earlier attempt is not adopted: a new CustomJob is created.
    vertex.set_state(earlier, aiplatform_v1.JobState.JOB_STATE_FAILED, "boom")
    third = launcher.launch(Job(**{**first.__dict__, "attempts": 3}))
    assert not third.adopted
    assert third.ref != earlier
    assert vertex.creates_for(first.id)[-1].custom_job.display_name == f"podscribe-{first.id}-a3"


def test_a_refused_lookup_of_earlier_launches_does_not_block_the_retry(
    vertex: FakeVertex,
) -> None:
    job = dispatched_job(attempts=2)
    vertex.list_refusal = Refusal(grpc.StatusCode.PERMISSION_DENIED, "aiplatform.customJobs.list")
    try:
        result = VertexLauncher(make_settings(vertex)).launch(job)
    finally:
        vertex.list_refusal = None
    assert not result.adopted
    assert len(vertex.creates_for(job.id)) == 1


def test_placements_parse_and_refuse_nonsense(vertex: FakeVertex) -> None:
    settings = make_settings(
        vertex,
        vertex_fallbacks="us-central1/g2-standard-8/NVIDIA_L4, us-west4/g2-standard-8/nvidia_l4",
    )
    assert placements(settings) == [
        Placement("us-central1", "g2-standard-8", "NVIDIA_L4"),
        Placement("us-west4", "g2-standard-8", "NVIDIA_L4"),
    ]
    for entry in ("us-central1/g2-standard-8", "a/b/NVIDIA_NOPE", "//"):
        with pytest.raises(SettingsError):
            Placement.parse(entry)


def test_the_launcher_is_chosen_by_configuration(vertex: FakeVertex, tmp_path: Any) -> None:
    assert isinstance(launcher_for(make_settings(vertex)), VertexLauncher)
    local = make_settings(vertex, launcher="local", local_state_dir=tmp_path)
    assert isinstance(launcher_for(local), LocalProcessLauncher)
    template = tmp_path / "job.yaml"
    template.write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: ${JOB_NAME}}\n")
    kube = make_settings(vertex, launcher="kubernetes", k8s_job_template=template)
    assert isinstance(launcher_for(kube), KubernetesLauncher)
    with pytest.raises(SettingsError, match="PODSCRIBE_VERTEX_IMAGE"):
        launcher_for(make_settings(vertex, vertex_image=None))
    with pytest.raises(SettingsError, match="PODSCRIBE_K8S_JOB_TEMPLATE"):
        launcher_for(make_settings(vertex, launcher="kubernetes"))

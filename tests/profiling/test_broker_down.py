"""An upload with the task broker down (a closed port, not a mock): the upload is kept, its job says it could not be
queued, and the beat task queues it once the broker is back (a real Redis)."""
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from collector.models import Project
from profiling import _proto, tasks
from profiling.models import Artifact, ProfilingJob
from tests.broker import broker  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # the upload queues its job on commit, as in production


def mlmodel_bytes() -> bytes:
    spec = _proto.model_pb2().Model()
    spec.specificationVersion = 4
    spec.neuralNetwork.SetInParent()
    return spec.SerializeToString()


def test_upload_with_the_broker_down_is_queued_when_it_is_back(client, settings, tmp_path, broker):  # noqa: F811
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = Project.objects.create(slug="prof-broker", name="Broker down")
    user = get_user_model().objects.create_user("uma", password="pw")
    project.members.add(user)
    client.force_login(user)

    broker.down()
    response = client.post(reverse("profiling:jobs"), {
        "project": project.pk, "model_name": "tiny", "version": "1.0",
        "file": SimpleUploadedFile("tiny.mlmodel", mlmodel_bytes())})
    assert response.status_code == 302
    job = ProfilingJob.objects.get()
    assert (job.status, job.task_id) == (ProfilingJob.QUEUED, "")
    assert job.progress_message == "could not queue: the task broker is unreachable; it will be retried"
    assert job.artifacts.get().role == Artifact.INPUT  # the upload is kept for the retry
    assert "the task broker is unreachable; it will be retried" in client.get(response.url).content.decode()

    settings.PERFBOARD = {**settings.PERFBOARD, "PROFILING_REQUEUE_AFTER_SECONDS": 0}
    assert tasks.requeue_unqueued_jobs() == 0  # still down: the job waits for the next beat run
    assert ProfilingJob.objects.get().task_id == ""

    broker.up()
    settings.PERFBOARD = {**settings.PERFBOARD, "PROFILING_REQUEUE_AFTER_SECONDS": 3600}
    assert tasks.requeue_unqueued_jobs() == 0  # too recent: its first queueing may still be under way
    settings.PERFBOARD = {**settings.PERFBOARD, "PROFILING_REQUEUE_AFTER_SECONDS": 0}
    assert tasks.requeue_unqueued_jobs() == 1
    job.refresh_from_db()
    assert job.status == ProfilingJob.QUEUED and job.task_id and job.progress_message == ""
    assert broker.take("profiling.run_job") == [{"id": job.task_id, "args": [job.pk]}]
    assert tasks.requeue_unqueued_jobs() == 0  # it has a task now: never queued twice


def test_the_requeue_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["requeue-profiling-jobs"]
    assert entry["task"] == tasks.requeue_unqueued_jobs.name and entry["schedule"] > 0


def test_a_macos_step_that_cannot_be_queued_says_so(settings, tmp_path, broker):  # noqa: F811
    from profiling import jobs

    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = Project.objects.create(slug="prof-mac", name="Mac queue")
    job = jobs.create_job(project, SimpleUploadedFile("tiny.mlmodel", mlmodel_bytes()), "tiny.mlmodel",
                          model_name="tiny", version="1.0", enqueue=False)
    ProfilingJob.objects.filter(pk=job.pk).update(macos_status=ProfilingJob.MAC_QUEUED)
    broker.down()
    jobs._queue_macos(job.pk)
    job.refresh_from_db()
    assert job.macos_status == ProfilingJob.MAC_FAILED
    assert job.macos_message.startswith("not queued for a macOS worker: the task broker is unreachable")

"""Silent Neural Engine fallback on the pages (issue 14, item 2): face-retouch 3.3.0's cpuAndNeuralEngine runs on the
A14 Bionic ran on the CPU (benchmarks.fleet.SILENT_FALLBACK: cpuOnly timings, lab plans with every op on the CPU).
The overview and the policy page mark it, and the policy never calls it the Neural Engine answer."""
import pytest
from django.contrib.auth import get_user_model

from benchmarks.fleet import CHIP_OF, SILENT_FALLBACK, SILENT_FALLBACK_TRUTH, generate
from collector.bulk import bulk_load
from collector.models import ModelVersion, Run
from policy.evidence import policy_table

from .conftest import committed_project

pytestmark = pytest.mark.django_db

SLUG = "fallback-pages"
CHIPS = {SILENT_FALLBACK["chip"], "A16 Bionic"}
SCOPE = {"project": SLUG, "model": "face-retouch", "version": SILENT_FALLBACK["from_version"]}


@pytest.fixture(scope="module")
def fallback_fleet(django_db_setup, django_db_blocker):
    """face-retouch 3.3.0 on the A14 and A16 devices of a 20,000-run draw (~1,000 runs)."""
    with committed_project(django_db_blocker, SLUG, lambda slug: bulk_load(slug, (
            r for r in generate(20000, 7, truth=SILENT_FALLBACK_TRUTH)
            if r["model"]["name"] == "face-retouch" and r["model"]["version"] == SCOPE["version"]
            and CHIP_OF[r["device"]["identifier"]] in CHIPS))) as loaded:
        yield loaded


@pytest.fixture
def member(fallback_fleet, client):
    user = get_user_model().objects.create_user("fallback-member", password="pw")
    fallback_fleet[0].members.add(user)
    client.force_login(user)
    return client


def test_the_policy_never_calls_a_unit_on_the_cpu_the_neural_engine_answer(fallback_fleet, client_for):
    app = client_for(fallback_fleet[1])
    query = {"model": "face-retouch", "version": SCOPE["version"], "predictions_per_session": 1000}
    on_a14 = app.get("/api/v1/policy", {**query, "device": "iPhone13,2"}).json()  # iPhone 12
    assert on_a14["evidence"]["cpuAndNeuralEngine"]["runs_on_cpu"] is True
    assert not on_a14["evidence"]["cpuAndNeuralEngine"]["eligible"]
    assert on_a14["compute_units"] != "cpuAndNeuralEngine" and "cpuAndNeuralEngine" not in on_a14["fallback"]
    assert "runs on the CPU" in on_a14["reason"]
    on_a16 = app.get("/api/v1/policy", {**query, "device": "iPhone15,2"}).json()
    assert not any(e["runs_on_cpu"] for e in on_a16["evidence"].values())


def test_a_device_judged_on_its_chips_runs_gets_the_chips_mark(fallback_fleet):
    """The iPhone 12 without cpuAndNeuralEngine runs of its own: the policy table judges that unit on the A14's runs,
    which ran on the CPU, so it carries the chip's mark and is never picked (the table checks a chip's units only
    where a device leans on them)."""
    version = ModelVersion.objects.get(project=fallback_fleet[0], name="face-retouch", version=SCOPE["version"])
    runs = Run.objects.exclude(device__identifier="iPhone13,2", compute_units="cpuAndNeuralEngine")
    table = {e.identifier: e.policy for e in policy_table(version, 1000, devices="measured", runs=runs)}
    leaning = table["iPhone13,2"].evidence["cpuAndNeuralEngine"]
    assert leaning.source == "chip" and leaning.runs_on_cpu and not leaning.eligible
    assert table["iPhone13,2"].compute_units != "cpuAndNeuralEngine"
    a16 = [policy for identifier, policy in table.items() if CHIP_OF[identifier] == "A16 Bionic"]
    assert a16 and all(not a.runs_on_cpu for policy in a16 for a in policy.evidence.values())


def test_the_policy_page_marks_it(member):
    page = member.get("/policy", {**SCOPE, "predictions_per_session": 1000}).content.decode()
    assert "⚠ cpuAndNeuralEngine runs on the CPU" in page
    assert "runs on the CPU" in page


def test_the_overview_marks_it_on_the_a14_only(member):
    page = member.get("/", {**SCOPE, "rows": "chip"}).content.decode()
    assert 'id="runs-on-cpu"' in page
    notice = page[page.index('id="runs-on-cpu"'):]
    notice = notice[:notice.index("</div>")]
    assert f"cpuAndNeuralEngine on {SILENT_FALLBACK['chip']}" in notice and "A16" not in notice
    # in the heatmap: the cell's text and its hover (the figure's JSON escapes "⚠", "<" and ">")
    assert "\\u26a0 runs on the CPU" in page
    assert "\\u003cb\\u003eruns on the CPU\\u003c\\u002fb\\u003e: asked for the Neural Engine" in page

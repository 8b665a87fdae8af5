"""benchmarks.fleet: the injected regressions are a parameter; the default one keeps the fleet the tests know."""

import hashlib
import json

import pytest

from benchmarks.fleet import CHIP_OF, GROUND_TRUTH, generate

# sha256 of json.dumps(list(generate(200, 7)), sort_keys=True), taken before `truth` became a parameter.
DEFAULT_200_RUNS_SHA256 = "ce0ddec36e8a9ccaa5797243cdbfb840d205bbbafc13c5ad8eef8358152b9999"
NO_REGRESSIONS = {"slowdown": [], "crash": []}
N = 3000


def digest(runs) -> str:
    return hashlib.sha256(json.dumps(list(runs), sort_keys=True).encode()).hexdigest()


def test_default_truth_gives_the_runs_it_gave_before():
    """Without the fastPrediction runs (issue 14), the default truth draws exactly the runs it drew before hints
    existed; with them, only the hinted runs differ, and only in their hints, load and predictions."""
    unhinted = {**GROUND_TRUTH, "fast_prediction": {}}
    assert digest(generate(200, 7, truth=unhinted)) == DEFAULT_200_RUNS_SHA256
    # GROUND_TRUTH's facts as lists of one are the same truth
    listed = {**unhinted, "slowdown": [GROUND_TRUTH["slowdown"]], "crash": [GROUND_TRUTH["crash"]]}
    assert digest(generate(200, 7, truth=listed)) == DEFAULT_200_RUNS_SHA256
    hinted = 0
    for before, now in zip(generate(200, 7, truth=unhinted), generate(200, 7)):
        if "optimization_hints" not in now:
            assert now == before
            continue
        hinted += 1
        assert now["model"]["name"] == "style-diffusion" and now["compute_units"] in ("cpuAndNeuralEngine", "all")
        assert now["optimization_hints"] == {"specialization_strategy": "fastPrediction"}
        assert changed_fields(before, now) - {"timings_ms", "predictions_ms"} <= {
            "timings_ms.load", "timings_ms.first_prediction"}
        if now["status"] == "ok":
            assert now["timings_ms"]["load"] > before["timings_ms"]["load"]
            assert now["predictions_ms"][0] < before["predictions_ms"][0]
    assert hinted > 0


@pytest.fixture(scope="module")
def base():
    return list(generate(N, 5, truth=NO_REGRESSIONS))


def hit(run, model, version, chip, os_major=None, load_kind=None) -> bool:
    return (run["model"]["name"] == model and run["model"]["version"] >= version
            and CHIP_OF[run["device"]["identifier"]] == chip
            and (os_major is None or run["device"]["os_version"].startswith(f"{os_major}."))
            and (load_kind is None or run["load_kind"] == load_kind))


def changed_fields(a, b) -> set[str]:
    return {k for k in a if a[k] != b[k]} | {f"timings_ms.{k}" for k in a["timings_ms"]
                                             if a["timings_ms"][k] != b["timings_ms"][k]}


def check_only_hit_runs_change(base, slow, is_hit, scaled, factor):
    """Runs the fact misses are unchanged; in those it hits, only the ``scaled`` values change, by ``factor``."""
    allowed = {"timings_ms"} | {n if n == "predictions_ms" else f"timings_ms.{n}" for n in scaled}
    assert len(slow) == len(base)
    hits = 0
    for a, b in zip(base, slow):
        if not is_hit(a):
            assert a == b
            continue
        hits += 1
        assert changed_fields(a, b) <= allowed
        for name in scaled:
            before, after = (r[name] if name == "predictions_ms" else [r["timings_ms"][name]] for r in (a, b))
            assert after == pytest.approx([x * factor for x in before], abs=2e-3)
    assert hits >= 5  # the fact did hit runs


def test_warm_slowdown_changes_only_its_chip_and_version_from_on(base):
    # GROUND_TRUTH's slowdown (warm, every unit) on its own: face-retouch 3.3.0 on A16 Bionic
    slow = list(generate(N, 5, truth={**NO_REGRESSIONS, "slowdown": GROUND_TRUTH["slowdown"]}))
    check_only_hit_runs_change(base, slow, lambda r: hit(r, "face-retouch", "3.3.0", "A16 Bionic"),
                               ["predictions_ms", "first_prediction"], 1.15)
    # from a middle version on: 3.2.0 and 3.3.0 are slower, 3.1.0 is not
    fact = {"model": "face-retouch", "version": "3.2.0", "chip": "A15 Bionic", "factor": 1.2}
    slow = list(generate(N, 5, truth={**NO_REGRESSIONS, "slowdown": [fact]}))
    check_only_hit_runs_change(base, slow, lambda r: hit(r, "face-retouch", "3.2.0", "A15 Bionic"),
                               ["predictions_ms", "first_prediction"], 1.2)
    assert any(r["model"]["version"] == "3.3.0" and r != s for r, s in zip(base, slow))


def test_load_slowdowns_change_only_their_load_kind_and_os(base):
    cold = {"model": "face-retouch", "version": "3.2.0", "chip": "A17 Pro", "metric": "cold_load", "factor": 1.25}
    slow = list(generate(N, 5, truth={**NO_REGRESSIONS, "slowdown": [cold]}))
    check_only_hit_runs_change(base, slow, lambda r: hit(r, "face-retouch", "3.2.0", "A17 Pro", load_kind="cold"),
                               ["load"], 1.25)
    cached = {"model": "face-retouch", "version": "3.3.0", "chip": "A18", "metric": "cached_load", "os_major": 18,
              "factor": 1.3}
    slow = list(generate(N, 5, truth={**NO_REGRESSIONS, "slowdown": [cached]}))
    check_only_hit_runs_change(base, slow, lambda r: hit(r, "face-retouch", "3.3.0", "A18", 18, "cached"),
                               ["load"], 1.3)


def test_crash_rise_hits_its_units_from_its_version_on():
    fact = {"model": "face-retouch", "from_version": "3.2.0", "chip": "A16 Bionic",
            "compute_units": ["cpuAndGPU"], "rate": 0.5}
    runs = list(generate(N, 5, truth={**NO_REGRESSIONS, "crash": [fact]}))
    crashed = [r for r in runs if r["status"] == "crash"]
    assert crashed and all(hit(r, "face-retouch", "3.2.0", "A16 Bionic") and r["compute_units"] == "cpuAndGPU"
                           for r in crashed)
    exposed = [r for r in runs if hit(r, "face-retouch", "3.2.0", "A16 Bionic") and r["compute_units"] == "cpuAndGPU"]
    assert 0.3 < len(crashed) / len(exposed) < 0.7

"""macOS-only measurements: load time, first/warm prediction and MLComputePlan per compute unit.

Runs only where coremltools has its Core ML runtime proxies (a Mac). On Linux,
``capability()`` says why not and the job reports "needs a macOS worker". The
output of ``measure()`` is plain JSON-able data so that its handling
(profiling.jobs.record_measurements) is tested with recorded data on Linux.
"""
from __future__ import annotations

import platform
import subprocess
import time
from datetime import datetime, timezone

from insights import vocabulary

# insights.vocabulary.COMPUTE_UNITS (wire names) -> coremltools.ComputeUnit member names, in the same order.
COREMLTOOLS_COMPUTE_UNITS = dict(zip(vocabulary.COMPUTE_UNITS, ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL")))
# MLComputePlan device classes -> insights.vocabulary.PLAN_DEVICES, in the same order.
PLAN_DEVICES = dict(zip(("MLCPUComputeDevice", "MLGPUComputeDevice", "MLNeuralEngineComputeDevice"),
                        vocabulary.PLAN_DEVICES))
NEEDS_MACOS = "needs a macOS worker"


def capability() -> tuple[bool, str]:
    """(available, reason): can this process load models and compute plans with Core ML?"""
    try:
        from coremltools.models import compute_plan, model
    except Exception as exc:  # noqa: BLE001 - any import failure means "not here"
        return False, f"{NEEDS_MACOS}: coremltools cannot be imported ({exc})"
    missing = [
        name
        for name, proxy in (("_MLModelProxy", getattr(model, "_MLModelProxy", None)),
                            ("_MLComputePlanProxy", getattr(compute_plan, "_MLComputePlanProxy", None)))
        if proxy is None
    ]
    if missing:
        return False, (
            f"{NEEDS_MACOS}: coremltools' Core ML runtime ({', '.join(missing)}) is not available on this "
            f"host ({platform.system()}); load time, predictions and MLComputePlan run on a worker of queue 'macos'"
        )
    return True, ""


def _device_identity() -> dict:
    try:
        ident = subprocess.run(["sysctl", "-n", "hw.model"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        ident = ""
    return {"identifier": ident or "Mac", "os_version": platform.mac_ver()[0] or "0"}


def _random_inputs(mlmodel):
    import numpy as np

    feeds = {}
    for inp in mlmodel.get_spec().description.input:
        arr = inp.type.multiArrayType
        shape = list(arr.shape) or [1]
        dtype = np.float16 if arr.dataType == arr.FLOAT16 else np.float32
        feeds[inp.name] = np.random.default_rng(0).random(shape).astype(dtype)
    return feeds


def _compute_plan(path: str, unit) -> list[dict]:
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(path=path, compute_units=unit)
    program = plan.model_structure.program
    if program is None:
        return []
    ops = []
    for function in program.functions.values():
        for op in function.block.operations:
            if op.operator_name in ("const",):
                continue
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            device = PLAN_DEVICES.get(type(usage.preferred_compute_device).__name__) if usage else None
            if device is None:
                continue
            cost = plan.get_estimated_cost_for_mlprogram_operation(op)
            name = op.outputs[0].name if op.outputs else op.operator_name
            ops.append({"op": name, "type": op.operator_name, "device": device,
                        "estimated_cost": cost.weight if cost is not None else None})
    return ops


def measure(path: str, warm: int = 10) -> dict:
    """Measure an .mlpackage with every compute-unit setting. Mac only."""
    import coremltools as ct

    ok, why = capability()
    if not ok:
        raise RuntimeError(why)
    result = {"device": _device_identity(), "runs": []}
    for wire, member in COREMLTOOLS_COMPUTE_UNITS.items():
        unit = getattr(ct.ComputeUnit, member)
        run = {"compute_units": wire, "status": "ok", "failure": None,
               "started_at": datetime.now(timezone.utc).isoformat()}
        try:
            t0 = time.perf_counter()
            mlmodel = ct.models.MLModel(path, compute_units=unit)
            run["load_ms"] = (time.perf_counter() - t0) * 1000
            feeds = _random_inputs(mlmodel)
            t0 = time.perf_counter()
            mlmodel.predict(feeds)
            run["first_prediction_ms"] = (time.perf_counter() - t0) * 1000
            times = []
            for _ in range(warm):
                t0 = time.perf_counter()
                mlmodel.predict(feeds)
                times.append((time.perf_counter() - t0) * 1000)
            run["predictions_ms"] = times
        except Exception as exc:  # noqa: BLE001 - a failing unit is a result, not a crash
            stage = "load" if "load_ms" not in run else "first_prediction" if "first_prediction_ms" not in run else "prediction"
            run.update(status="error", failure={"stage": stage, "message": str(exc)[:4000]})
        else:
            try:  # placement is extra information: its failure does not fail the run
                run["compute_plan"] = _compute_plan(mlmodel.get_compiled_model_path(), unit)
            except Exception as exc:  # noqa: BLE001
                run["compute_plan_error"] = str(exc)[:4000]
        result["runs"].append(run)
    return result

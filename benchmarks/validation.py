"""Validation cost of one 500-run upload: DRF serializers vs pydantic (what collector/schema.py uses) vs msgspec.

    python -m benchmarks.validation

The three validators check the same rules (types, ranges, choices, lengths, the status/failure rule) on the same
JSON bytes; each figure is the median of repeated full decodes+validations of the body. pydantic was kept: close to
msgspec in speed, and it reports every bad field of a run rather than the first.
"""
import json
import os
import statistics
import time
import uuid as uuidlib
from typing import Annotated, Literal

import msgspec

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
import django  # noqa: E402

django.setup()
from rest_framework import serializers  # noqa: E402

from benchmarks.fleet import generate  # noqa: E402
from collector.schema import BatchIn  # noqa: E402
from insights.vocabulary import (  # noqa: E402
    COMPUTE_UNITS, LOAD_KINDS, OK, RESHAPE_FREQUENCIES, SOURCES, SPECIALIZATION_STRATEGIES, STAGES, STATUSES,
)


class TimingsS(serializers.Serializer):
    decrypt = serializers.FloatField(min_value=0, allow_null=True, required=False)
    compile = serializers.FloatField(min_value=0, allow_null=True, required=False)
    load = serializers.FloatField(min_value=0, allow_null=True, required=False)
    first_prediction = serializers.FloatField(min_value=0, allow_null=True, required=False)


class RunS(serializers.Serializer):
    run_id = serializers.UUIDField()
    source = serializers.ChoiceField(SOURCES)
    model = serializers.DictField()
    device = serializers.DictField()
    app_build = serializers.CharField(max_length=64, allow_blank=True, required=False)
    compute_units = serializers.ChoiceField(COMPUTE_UNITS)
    variant = serializers.CharField(max_length=64, allow_null=True, required=False)
    started_at = serializers.DateTimeField()
    status = serializers.ChoiceField(STATUSES)
    failure = serializers.DictField(allow_null=True, required=False)
    load_kind = serializers.ChoiceField(LOAD_KINDS)
    timings_ms = TimingsS()
    predictions_ms = serializers.ListField(child=serializers.FloatField(min_value=0), max_length=10_000)
    peak_memory_mb = serializers.FloatField(min_value=0, allow_null=True, required=False)
    thermal_state = serializers.CharField(allow_null=True, required=False)

    def validate(self, data):
        if data["status"] != OK and not data.get("failure"):
            raise serializers.ValidationError({"failure": "required unless status is ok"})
        return data


class BatchS(serializers.Serializer):
    runs = RunS(many=True)


NonNeg = Annotated[float, msgspec.Meta(ge=0)]


class TimingsM(msgspec.Struct, forbid_unknown_fields=True):
    decrypt: NonNeg | None = None
    compile: NonNeg | None = None
    load: NonNeg | None = None
    first_prediction: NonNeg | None = None


class ModelM(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    sha256: str | None = None
    format: str = ""
    precision: str = ""
    size_bytes: int | None = None


class DeviceM(msgspec.Struct, forbid_unknown_fields=True):
    identifier: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9,._-]{0,63}$")]
    os_version: str


class FailureM(msgspec.Struct):
    stage: Literal[STAGES]
    message: str = ""


class HintsM(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    specialization_strategy: Literal[SPECIALIZATION_STRATEGIES] = SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: Literal[RESHAPE_FREQUENCIES] = RESHAPE_FREQUENCIES[0]


class RunM(msgspec.Struct, forbid_unknown_fields=True):
    run_id: uuidlib.UUID
    source: Literal[SOURCES]
    model: ModelM
    device: DeviceM
    compute_units: Literal[COMPUTE_UNITS]
    started_at: str
    status: Literal[STATUSES]
    load_kind: Literal[LOAD_KINDS]
    timings_ms: TimingsM
    predictions_ms: Annotated[list[NonNeg], msgspec.Meta(max_length=10_000)] = []
    app_build: str = ""
    optimization_hints: HintsM = HintsM()
    variant: str | None = None
    failure: FailureM | None = None
    peak_memory_mb: NonNeg | None = None
    thermal_state: str | None = None

    def __post_init__(self):
        if self.status != OK and self.failure is None:
            raise ValueError("failure: required unless status is ok")


class BatchM(msgspec.Struct):
    runs: list[RunM]


def timed(fn, repeat=15):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    body = json.dumps({"runs": list(generate(500, seed=3))}).encode()

    def drf():
        s = BatchS(data=json.loads(body))
        assert s.is_valid(), s.errors

    results = {
        "DRF serializers": timed(drf, 5),
        "pydantic (kept)": timed(lambda: BatchIn.model_validate_json(body)),
        "msgspec": timed(lambda: msgspec.json.decode(body, type=BatchM)),
    }
    print(f"one upload of 500 runs, {len(body) / 1e6:.2f} MB")
    for name, seconds in results.items():
        print(f"{name:16s} {seconds * 1000:8.1f} ms  {500 / seconds:10.0f} runs/s")


if __name__ == "__main__":
    main()

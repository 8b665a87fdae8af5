"""The wire contract of POST /api/v1/runs (docs/api.md), as pydantic models.

pydantic validates a 500-run batch several times faster than an equivalent DRF serializer (see
benchmarks/validation.py) and reports every error with its path, which becomes the field name in a 400.
Unknown fields are refused so that a typo (`timing_ms`) is an error rather than silently lost data.
"""
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict as StrictType, StringConstraints,
    model_validator,
)

from insights import vocabulary

MAX_PREDICTIONS = 10_000
MAX_PLAN_OPS = 50_000
# One day in ms: no load or prediction on a phone takes longer; larger values are unit mix-ups.
MAX_TIME_MS = 86_400_000.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True, frozen=True)


# Numbers are strict: "12.5" or true where a time belongs is a runner bug worth reporting, not coercing.
TimeMs = Annotated[float, StrictType(), Field(ge=0.0, le=MAX_TIME_MS, allow_inf_nan=False)]
# Names and labels are one line of printable text; a message may span lines. None may hold NUL, which PostgreSQL
# cannot store in text: refused here, it is a 400 naming the field instead of a failed insert.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
# Every max_length is at most its column's (collector/models.py; tests/collector/test_ingest_limits.py checks them all).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=ONE_LINE)]
Label = Annotated[str, StringConstraints(max_length=64, pattern=ONE_LINE)]
Tag = Annotated[str, StringConstraints(max_length=32, pattern=ONE_LINE)]  # model format and precision: varchar(32)
OsVersion = Annotated[str, StringConstraints(pattern=r"^\d{1,3}(\.\d{1,4}){0,3}$", max_length=32)]
# Apple identifiers: "iPhone15,2", "iPad16,3", "Mac14,2", "arm64" (simulator). No spaces, no markup.
Identifier = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9,._-]{0,63}$")]
# A run's start: Core ML's first release (2017) to one day past the server's clock, with a real UTC offset. Anything
# else is a runner's clock or format bug, and a year past 9999 in UTC (9999-12-31T23:00-12:00) or an offset
# PostgreSQL refuses (+18:00) would otherwise be stored, or fail the insert, and break every read of the project.
EARLIEST_START = datetime(2017, 1, 1, tzinfo=timezone.utc)
MAX_OFFSET = timedelta(hours=14)
FUTURE_SLACK = timedelta(days=1)


def check_offset(value: datetime) -> datetime:
    """A time with a real UTC offset (within ±14:00; PostgreSQL refuses +16:00) that is a time in UTC too; returns
    it in UTC."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("needs a UTC offset (Z or ±hh:mm)")
    if abs(offset) > MAX_OFFSET:
        raise ValueError("UTC offset must be within ±14:00")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 in UTC")


def check_time(value: datetime) -> datetime:
    """The rule for a run's time: offset within ±14:00, 2017-01-01 to now + 1 day.

    Compared in UTC: every comparison of pydantic's own tzinfo calls back into it, which made this check a quarter of
    a run's validation (benchmarks/ingest_steps.py)."""
    utc = check_offset(value)
    if utc < EARLIEST_START:
        raise ValueError("must not be before 2017-01-01T00:00:00Z (Core ML's first release)")
    if utc > datetime.now(timezone.utc) + FUTURE_SLACK:
        raise ValueError("must not be more than one day past the server's clock")
    return value


StartedAt = Annotated[AwareDatetime, AfterValidator(check_time)]
Sha256 = Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]

# The wire names are the vocabulary's (insights.vocabulary); Literal[tuple] spells the same choices.
ComputeUnits = Literal[vocabulary.COMPUTE_UNITS]
Status = Literal[vocabulary.STATUSES]
Stage = Literal[vocabulary.STAGES]


class ModelIn(Strict):
    name: Name
    version: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ONE_LINE)]
    sha256: Sha256 | None = None
    format: Tag = ""
    precision: Tag = ""
    size_bytes: Annotated[int, StrictType(), Field(ge=0, le=1 << 50)] | None = None


class DeviceIn(Strict):
    identifier: Identifier
    os_version: OsVersion


class FailureIn(Strict):
    stage: Stage
    message: Annotated[str, StringConstraints(max_length=4000, pattern=NO_NUL)] = ""


class TimingsIn(Strict):
    decrypt: TimeMs | None = None
    compile: TimeMs | None = None
    load: TimeMs | None = None
    first_prediction: TimeMs | None = None


class PlanOpIn(Strict):
    op: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=ONE_LINE)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ONE_LINE)]
    device: Literal[vocabulary.PLAN_DEVICES]
    estimated_cost: Annotated[float, StrictType(), Field(ge=0.0, allow_inf_nan=False)] | None = None


class OptimizationHintsIn(Strict):
    """``MLOptimizationHints`` the run's configuration set; a hint left out is Apple's default."""

    specialization_strategy: Literal[vocabulary.SPECIALIZATION_STRATEGIES] = vocabulary.SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: Literal[vocabulary.RESHAPE_FREQUENCIES] = vocabulary.RESHAPE_FREQUENCIES[0]


class RunIn(Strict):
    run_id: UUID
    source: Literal[vocabulary.SOURCES]
    model: ModelIn
    device: DeviceIn
    app_build: Label = ""
    compute_units: ComputeUnits
    # Optional (absent: Apple's defaults); with compute_units, the run's configuration, never pooled with another.
    optimization_hints: OptimizationHintsIn = OptimizationHintsIn()
    variant: Label | None = None
    started_at: StartedAt
    status: Status
    failure: FailureIn | None = None
    load_kind: Literal[vocabulary.LOAD_KINDS]
    timings_ms: TimingsIn = TimingsIn()
    predictions_ms: Annotated[list[TimeMs], Field(max_length=MAX_PREDICTIONS)] = []
    peak_memory_mb: Annotated[float, StrictType(), Field(ge=0.0, le=1_048_576.0, allow_inf_nan=False)] | None = None
    thermal_state: Literal[vocabulary.THERMAL_STATES] | None = None
    compute_plan: Annotated[list[PlanOpIn], Field(max_length=MAX_PLAN_OPS)] | None = None

    @model_validator(mode="after")
    def _status_matches_failure(self):
        if self.status == "ok":
            if self.failure is not None:
                raise ValueError("failure: must be null when status is 'ok'")
            missing = [k for k in ("load", "first_prediction") if getattr(self.timings_ms, k) is None]
            if missing:
                raise ValueError(f"timings_ms.{missing[0]}: required when status is 'ok'")
        elif self.failure is None:
            raise ValueError(f"failure: required when status is '{self.status}' (give stage and message)")
        return self

    @property
    def os_major(self) -> int:
        return int(self.device.os_version.split(".")[0])


MAX_RUNS = 1000


class BatchIn(Strict):
    runs: Annotated[list[RunIn], Field(min_length=1, max_length=MAX_RUNS)]


def field_errors(errors) -> list[dict]:
    """pydantic errors (with loc relative to a run) as [{"field": "timings_ms.load", "message": "..."}]."""
    out = []
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        message = err["msg"]
        if err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
            # Cross-field checks name their field at the start of the message: "failure: required when ...".
            named = re.match(r"^([a-z_.]+): (.*)$", message)
            if named and not loc:
                loc, message = named.group(1).split("."), named.group(2)
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append({"field": ".".join(loc) or "(body)", "message": message})
    return out


"""The dashboard's URL filters, shared by every page (overview, compare, versions, fleet, policy).

Every view reads its scope from the query string, so any view can be shared as a link:

    ?project=demo&model=face-retouch&version=3.3.0&chip=A15+Bionic&os_min=18&compute_units=all&source=field

`Filters.from_query(request.GET)` parses and validates (an invalid value is dropped and reported in `errors`,
never a 500); `filters.apply(runs)` narrows a Run queryset; `filters.query(**changes)` writes a query string back,
e.g. for a link that changes one filter. Which project a user may see is not decided here: views resolve `project`
against `collector.auth.visible_projects` (see `dashboard.queries.resolve_scope`).
"""
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from django import forms
from django_filters.fields import IsoDateTimeField

from collector.filters import run_time
from collector.models import choices
from insights.vocabulary import COMPUTE_UNITS, SOURCES, SPECIALIZATION_STRATEGIES


class FilterForm(forms.Form):
    """Parses and validates the query string; `Filters` is what pages use."""

    project = forms.SlugField(required=False)
    model = forms.CharField(required=False, max_length=200)
    version = forms.CharField(required=False, max_length=64)
    device = forms.CharField(required=False, max_length=64, help_text="Hardware identifier, e.g. iPhone15,2.")
    chip = forms.CharField(required=False, max_length=32)
    os_min = forms.IntegerField(required=False, min_value=1, max_value=99, label="OS from (major)")
    os_max = forms.IntegerField(required=False, min_value=1, max_value=99, label="OS to (major)")
    compute_units = forms.MultipleChoiceField(required=False, choices=choices(COMPUTE_UNITS))
    source = forms.ChoiceField(required=False, choices=[("", "lab and field")] + choices(SOURCES))
    variant = forms.CharField(required=False, max_length=64)
    # The runs' specializationStrategy (optimization_hints): one configuration's runs, not the pool of all.
    specialization_strategy = forms.ChoiceField(required=False, label="Specialization",
                                                choices=[("", "any")] + choices(SPECIALIZATION_STRATEGIES))
    since = forms.DateField(required=False, label="From (date)")
    until = forms.DateField(required=False, label="To (date, inclusive)")
    # Instants, as GET /api/v1/runs and /api/v1/stats read them (ISO 8601 with an offset).
    started_after = IsoDateTimeField(required=False, validators=[run_time], label="Started at or after")
    started_before = IsoDateTimeField(required=False, validators=[run_time], label="Started before")


@dataclass(frozen=True)
class Filters:
    project: str = ""
    model: str = ""
    version: str = ""
    device: str = ""
    chip: str = ""
    os_min: int | None = None
    os_max: int | None = None
    compute_units: tuple[str, ...] = ()
    source: str = ""
    variant: str = ""
    since: date | None = None
    until: date | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    specialization_strategy: str = ""  # optimization_hints: one strategy's runs
    errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, query) -> "Filters":
        """From a QueryDict (request.GET). Invalid values are left out and described in `errors`."""
        form = FilterForm(query)
        form.is_valid()
        data = form.cleaned_data
        values = {}
        for f in fields(cls):
            if f.name == "errors" or f.name not in data:
                continue
            value = data[f.name]
            if f.name == "compute_units":
                value = tuple(u for u in COMPUTE_UNITS if u in value)
            elif isinstance(value, str):
                value = value.strip()
            values[f.name] = value
        errors = tuple(f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items())
        if values.get("os_min") and values.get("os_max") and values["os_min"] > values["os_max"]:
            values["os_min"], values["os_max"] = values["os_max"], values["os_min"]
        return cls(**values, errors=errors)

    def replace(self, **changes) -> "Filters":
        return replace(self, **changes)

    def items(self):
        """(name, value) pairs of the set filters, in URL form (lists repeated, dates ISO)."""
        for f in fields(self):
            if f.name == "errors":
                continue
            value = getattr(self, f.name)
            if value in (None, "", ()):
                continue
            if isinstance(value, tuple):
                for v in value:
                    yield f.name, v
            elif isinstance(value, date):
                yield f.name, value.isoformat()
            else:
                yield f.name, str(value)

    def query(self, **changes) -> str:
        """The query string of these filters with `changes` applied (a value of None or "" removes a filter).

        Keyword arguments that are not filters (e.g. `metric`) are appended as they are.
        """
        names = {f.name for f in fields(self)}
        own = {k: v for k, v in changes.items() if k in names}
        extra = {k: v for k, v in changes.items() if k not in names and v not in (None, "")}
        base = self.replace(**{k: (() if k == "compute_units" and not v else v) for k, v in own.items()})
        pairs = list(base.items()) + [(k, v) for k, v in extra.items()]
        return urlencode(pairs)

    @property
    def is_narrowed(self) -> bool:
        """True when anything beyond project/model/version narrows the runs."""
        return any(getattr(self, n) not in (None, "", ()) for n in (
            "device", "chip", "os_min", "os_max", "compute_units", "source", "variant", "specialization_strategy",
            "since", "until"))

    def apply(self, runs, skip=()):
        """Narrow a Run queryset by every set filter except those named in `skip`.

        `project`, `model` and `version` are matched by name here; views that resolved them to rows (the usual
        case, see `dashboard.queries.resolve_scope`) filter by id themselves and pass them in `skip`.
        """
        def on(name):
            return name not in skip and getattr(self, name) not in (None, "", ())

        if on("project"):
            runs = runs.filter(project__slug=self.project)
        if on("model"):
            runs = runs.filter(model_version__name=self.model)
        if on("version"):
            runs = runs.filter(model_version__version=self.version)
        if on("device"):
            runs = runs.filter(device__identifier=self.device)
        if on("chip"):
            runs = runs.filter(device__chip=self.chip)
        if on("os_min"):
            runs = runs.filter(os_major__gte=self.os_min)
        if on("os_max"):
            runs = runs.filter(os_major__lte=self.os_max)
        if on("compute_units"):
            runs = runs.filter(compute_units__in=self.compute_units)
        if on("source"):
            runs = runs.filter(source=self.source)
        if on("variant"):
            runs = runs.filter(variant="" if self.variant == "none" else self.variant)
        if on("specialization_strategy"):
            runs = runs.filter(specialization_strategy=self.specialization_strategy)
        if on("since"):
            runs = runs.filter(started_at__gte=datetime.combine(self.since, time.min, tzinfo=timezone.utc))
        if on("until"):
            end = datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=timezone.utc)
            runs = runs.filter(started_at__lt=end)
        if on("started_after"):
            runs = runs.filter(started_at__gte=self.started_after)
        if on("started_before"):
            runs = runs.filter(started_at__lt=self.started_before)
        return runs

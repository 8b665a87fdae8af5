import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import IsoDateTimeField

from insights.vocabulary import COMPUTE_UNITS, LOAD_KINDS, SOURCES, STATUSES

from .models import Device, ModelVersion, Project, Run, choices
from .schema import check_offset


def run_time(value):
    """A time filter has a run's kind of offset (collector/schema.py): one PostgreSQL refuses (+16:00) would fail
    the query with a 500 instead of a 400 naming the parameter. Unlike a run's start, a bound may lie outside 2017 to
    tomorrow (`started_before` next year means "all")."""
    try:
        check_offset(value)
    except ValueError as exc:
        raise ValidationError(f"{value.isoformat()}: {exc}", code="out_of_range")


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); blank is absent; anything else is a 400, never quietly read as absent (Django's
    NullBooleanField turns "null" or "maybe" into None, so a typo would change what a list shows)."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError("must be true or false", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class GivenIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time; a parameter given empty is an error rather than no bound."""

    def to_python(self, value):
        if value == "":
            raise ValidationError("must be an ISO 8601 time, not empty", code="invalid")
        return super().to_python(value)


class RunTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = GivenIsoDateTimeField


class ApiFilterSet(django_filters.FilterSet):
    """A filter given blank (``?status=``) is a 400 naming it: a script that sends one meant something, and reading
    it as "any" would answer another question. Pages bind their HTML forms, which send every field, through
    :func:`without_blanks` instead."""

    def is_valid(self):
        valid = super().is_valid()
        for name, messages in blank_parameters(self.data, self.filters).items():
            if name not in self.form.errors:
                self.form.add_error(name, messages)
                valid = False
        return valid


def blank_parameters(query, names) -> dict[str, list[str]]:
    """{name: [message]} for each of ``names`` the query gives blank: the API's rule for every endpoint."""
    return {name: ["must not be blank: leave the parameter out for any value"]
            for name in names if any(not value.strip() for value in query.getlist(name))}


def without_blanks(query):
    """A page's query string without the blank fields its form sends for "any"."""
    kept = query.copy()
    for name in list(kept):
        values = [v for v in kept.getlist(name) if v != ""]
        if values:
            kept.setlist(name, values)
        else:
            del kept[name]
    return kept


class NamedRowFilter(django_filters.CharFilter):
    """A filter on a related row's name (``field_name``: "project__slug"), resolved to those rows' ids first, a small
    table's read, so the runs are filtered on their own column: through a join PostgreSQL could not walk a project's
    runs in time order, and GET /api/v1/runs sorted all of them for each page (at 1M runs 3.4 s a page)."""

    def __init__(self, related, **kwargs):
        super().__init__(**kwargs)
        self.related = related

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        relation, name = self.field_name.split("__")
        ids = list(self.related.objects.filter(**{name: value}).values_list("pk", flat=True))
        return qs.filter(**{f"{relation}_id__in": ids}) if ids else qs.none()


class RunFilter(ApiFilterSet):
    # CharFilters refuse NUL bytes (Django's forms.CharField), ChoiceFilters anything not a choice.
    project = NamedRowFilter(Project, field_name="project__slug")
    model = NamedRowFilter(ModelVersion, field_name="model_version__name")
    version = NamedRowFilter(ModelVersion, field_name="model_version__version")
    device = NamedRowFilter(Device, field_name="device__identifier")
    chip = NamedRowFilter(Device, field_name="device__chip")
    os_version = django_filters.CharFilter()
    compute_units = django_filters.ChoiceFilter(choices=choices(COMPUTE_UNITS))
    status = django_filters.ChoiceFilter(choices=choices(STATUSES))
    source = django_filters.ChoiceFilter(choices=choices(SOURCES))
    load_kind = django_filters.ChoiceFilter(choices=choices(LOAD_KINDS))
    variant = django_filters.CharFilter()
    started_after = RunTimeFilter(field_name="started_at", lookup_expr="gte", validators=[run_time])
    started_before = RunTimeFilter(field_name="started_at", lookup_expr="lt", validators=[run_time])

    class Meta:
        model = Run
        fields = []

import django_filters
from django.core.exceptions import ValidationError

from .models import COMPUTE_UNITS, LOAD_KINDS, SOURCES, STATUSES, Run, choices
from .schema import check_offset


def run_time(value):
    """A time filter has a run's kind of offset (collector/schema.py): one PostgreSQL refuses (+16:00) would fail
    the query with a 500 instead of a 400 naming the parameter. Unlike a run's start, a bound may lie outside 2017 to
    tomorrow (`started_before` next year means "all")."""
    try:
        check_offset(value)
    except ValueError as exc:
        raise ValidationError(f"{value.isoformat()}: {exc}", code="out_of_range")


class RunFilter(django_filters.FilterSet):
    # CharFilters refuse NUL bytes (Django's forms.CharField), ChoiceFilters anything not a choice.
    project = django_filters.CharFilter(field_name="project__slug")
    model = django_filters.CharFilter(field_name="model_version__name")
    version = django_filters.CharFilter(field_name="model_version__version")
    device = django_filters.CharFilter(field_name="device__identifier")
    chip = django_filters.CharFilter(field_name="device__chip")
    os_version = django_filters.CharFilter()
    compute_units = django_filters.ChoiceFilter(choices=choices(COMPUTE_UNITS))
    status = django_filters.ChoiceFilter(choices=choices(STATUSES))
    source = django_filters.ChoiceFilter(choices=choices(SOURCES))
    load_kind = django_filters.ChoiceFilter(choices=choices(LOAD_KINDS))
    variant = django_filters.CharFilter()
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte", validators=[run_time])
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt", validators=[run_time])

    class Meta:
        model = Run
        fields = []

import django_filters

from .models import COMPUTE_UNITS, LOAD_KINDS, SOURCES, STATUSES, Run, choices


class RunFilter(django_filters.FilterSet):
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
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Run
        fields = []

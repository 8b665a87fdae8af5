"""GET /api/v1/alerts (the spec's list), GET/PATCH /api/v1/alerts/<id> (one alert; triage by members),
GET /api/v1/alert-summaries and GET/PATCH /api/v1/alert-summaries/<id> (a model version's alerts, triaged together)."""
import django_filters
from django import forms
from django.db.models import Prefetch
from rest_framework import generics, permissions
from rest_framework.response import Response

from collector.auth import TokenPrincipal, visible_projects
from collector.filters import ApiFilterSet, StrictBooleanFilter
from collector.models import choices
from insights.vocabulary import COMPUTE_UNITS

from .models import KINDS, STATES, Alert, AlertNote, AlertSummary
from .serializers import AlertDetailSerializer, AlertSerializer, AlertSummarySerializer, StateChangeSerializer
from .triage import set_state, set_summary_state


class AlertFilter(ApiFilterSet):
    """The filters of GET /api/v1/alerts and of the alerts page."""

    project = django_filters.CharFilter(field_name="project__slug", label="Project")
    model = django_filters.CharFilter()
    version = django_filters.CharFilter()
    device = django_filters.CharFilter(field_name="device__identifier", label="Device")
    chip = django_filters.CharFilter()
    compute_units = django_filters.ChoiceFilter(choices=choices(COMPUTE_UNITS), empty_label="any")
    kind = django_filters.ChoiceFilter(choices=choices(KINDS), empty_label="any")
    state = django_filters.ChoiceFilter(choices=choices(STATES), empty_label="any")
    metric = django_filters.CharFilter()
    withdrawn = StrictBooleanFilter(
        field_name="withdrawn_at", lookup_expr="isnull", exclude=True, label="Withdrawn",
        widget=forms.Select(choices=[("", "no"), ("true", "yes")]),
        help_text="true: only alerts a later check withdrew; false or absent: only the others.")

    class Meta:
        model = Alert
        fields = []

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("withdrawn") is None:  # a withdrawn alert is listed only when asked for
            queryset = queryset.filter(withdrawn_at__isnull=True)
        return super().filter_queryset(queryset)


def visible_alerts(request):
    return (Alert.objects.filter(project__in=visible_projects(request))
            .select_related("project", "device", "state_changed_by"))


class Triager(permissions.BasePermission):
    """Reading: as for runs (collector.auth.ProjectReader). Changing a state: a logged-in person, not a token,
    so that who changed it is a name."""

    message = "Changing an alert's state needs a logged-in member of its project."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and not isinstance(request.user, TokenPrincipal))


class AlertList(generics.ListAPIView):
    """Regression alerts of the caller's project, newest first."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return visible_alerts(self.request).order_by("-created_at", "-id")


class AlertDetail(generics.RetrieveUpdateAPIView):
    """One alert with its evidence run ids; PATCH {"state": "acknowledged"} triages it."""

    serializer_class = AlertDetailSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self):
        return super().get_permissions() + [Triager()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return visible_alerts(self.request)

    def patch(self, request, *args, **kwargs):
        alert = self.get_object()  # 404 for another project's alert
        change = StateChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        set_state(alert, change.validated_data["state"], request.user, change.validated_data["note"])
        return Response(AlertDetailSerializer(alert).data)


class AlertSummaryFilter(ApiFilterSet):
    project = django_filters.CharFilter(field_name="project__slug", label="Project")
    model = django_filters.CharFilter()
    version = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=choices(STATES), empty_label="any")

    class Meta:
        model = AlertSummary
        fields = []


def visible_summaries(request):
    """Summaries of the caller's projects with an alert not withdrawn."""
    return (AlertSummary.objects.filter(project__in=visible_projects(request),
                                        alerts__withdrawn_at__isnull=True).distinct()
            .select_related("project", "state_changed_by")
            .prefetch_related(Prefetch("alerts", Alert.objects.only("id", "summary_id", "withdrawn_at")),
                              Prefetch("notes", AlertNote.objects.select_related("author"))))


class AlertSummaryList(generics.ListAPIView):
    """Alert summaries (one per project, model and version) of the caller's project, newest first."""

    serializer_class = AlertSummarySerializer
    filterset_class = AlertSummaryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertSummary.objects.none()
        return visible_summaries(self.request).order_by("-created_at", "-id")


class AlertSummaryDetail(generics.RetrieveUpdateAPIView):
    """One summary; PATCH {"state": "acknowledged", "note": "…"} triages its alerts not triaged separately."""

    serializer_class = AlertSummarySerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self):
        return super().get_permissions() + [Triager()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertSummary.objects.none()
        return visible_summaries(self.request)

    def patch(self, request, *args, **kwargs):
        summary = self.get_object()
        change = StateChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        set_summary_state(summary, change.validated_data["state"], request.user, change.validated_data["note"])
        return Response(AlertSummarySerializer(self.get_queryset().get(pk=summary.pk)).data)

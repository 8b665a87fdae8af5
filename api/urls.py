"""Every route of ``/api/v1/`` (the wire contract: docs/api.md), mounted by perfboard/urls.py.

One module, so the whole API reads in one place; the views stay with their apps: runs in ``collector.api``, the
compute-unit policy in ``policy.api``, alerts in ``alerts.api``, the dashboard's numbers in ``dashboard.api``.
The names are global (``reverse("runs")``), as the API has no namespace.
"""
from django.urls import path

from alerts import api as alerts
from collector import api as runs
from dashboard import api as dashboard
from policy import api as policy

urlpatterns = [
    path("runs", runs.RunListCreate.as_view(), name="runs"),
    path("runs/<uuid:run_id>", runs.RunDetail.as_view(), name="run-detail"),
    path("policy", policy.PolicyView.as_view(), name="policy"),
    path("policy/export", policy.PolicyExportView.as_view(), name="policy-export"),
    path("alerts", alerts.AlertList.as_view(), name="alerts"),
    path("alerts/<int:pk>", alerts.AlertDetail.as_view(), name="alert-detail"),
    path("alert-summaries", alerts.AlertSummaryList.as_view(), name="alert-summaries"),
    path("alert-summaries/<int:pk>", alerts.AlertSummaryDetail.as_view(), name="alert-summary-detail"),
    path("coverage", dashboard.Coverage.as_view(), name="coverage"),
    path("stats", dashboard.Stats.as_view(), name="stats"),
]

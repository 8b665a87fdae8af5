from django.urls import include, path

from . import api, policy_api

urlpatterns = [
    path("runs", api.RunListCreate.as_view(), name="runs"),
    path("runs/<uuid:run_id>", api.RunDetail.as_view(), name="run-detail"),
    path("policy", policy_api.PolicyView.as_view(), name="policy"),
    path("policy/export", policy_api.PolicyExportView.as_view(), name="policy-export"),
    path("", include("alerts.api_urls")),  # alerts, alerts/<id>
]

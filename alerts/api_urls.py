"""Mounted by collector/urls.py under api/v1/."""
from django.urls import path

from . import api

urlpatterns = [
    path("alerts", api.AlertList.as_view(), name="alerts"),
    path("alerts/<int:pk>", api.AlertDetail.as_view(), name="alert-detail"),
]

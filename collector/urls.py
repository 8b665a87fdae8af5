from django.urls import path

from . import api

urlpatterns = [
    path("runs", api.RunListCreate.as_view(), name="runs"),
    path("runs/<uuid:run_id>", api.RunDetail.as_view(), name="run-detail"),
]

"""The policy pages. Filters travel in the query string (dashboard/filters.py), as on every dashboard page."""
from django.urls import path

from . import views

app_name = "policy"

urlpatterns = [
    path("policy", views.policy, name="policy"),
    path("policy/cold-start", views.cold_start, name="coldstart"),
    path("policy/guide", views.guide, name="guide"),
]

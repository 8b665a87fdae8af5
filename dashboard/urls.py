"""Dashboard pages. Filters travel in the query string (dashboard/filters.py), so every view is a shareable link.

Policy pages (dashboard/views_policy.py) add their paths below, named "policy" (the nav links to it when it exists).
"""
from django.urls import path

from . import views, views_policy

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("compare", views.compare, name="compare"),
    path("versions", views.versions, name="versions"),
    path("fleet", views.fleet, name="fleet"),
    path("runs/<uuid:run_id>", views.run_detail, name="run"),
    path("policy", views_policy.policy, name="policy"),
    path("policy/cold-start", views_policy.cold_start, name="coldstart"),
]

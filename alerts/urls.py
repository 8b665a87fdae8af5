"""Alert pages, mounted at alerts/ by perfboard/urls.py."""
from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_list, name="list"),
    path("check", views.start_check, name="check"),
    path("<int:pk>", views.alert_detail, name="detail"),
    path("<int:pk>/state", views.change_state, name="state"),
    path("summary/<int:pk>", views.summary_detail, name="summary"),
    path("summary/<int:pk>/state", views.change_summary_state, name="summary-state"),
    path("<slug:slug>/notifications", views.notifications, name="notifications"),
]

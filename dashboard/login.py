"""The login page. In the embedded default (DEBUG, and `manage.py load_demo` has created the demo fleet's account),
it tells the demo account, so a fresh `make run` can be tried without reading the README."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views

from collector.models import Project

DEMO_USERNAME = DEMO_PASSWORD = "demo"  # collector/management/commands/load_demo.py creates it


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["demo_account"] = (settings.DEBUG and Project.objects.filter(slug="demo").exists()
                                   and get_user_model().objects.filter(username=DEMO_USERNAME).exists())
        context["demo_username"], context["demo_password"] = DEMO_USERNAME, DEMO_PASSWORD
        return context

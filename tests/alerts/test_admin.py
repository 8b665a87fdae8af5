"""The admin names each model in plain English (issue 12: it showed "Notification settingss")."""
from django.contrib import admin

from alerts.models import NotificationSettings


def test_notification_settings_are_named_once():
    assert str(NotificationSettings._meta.verbose_name_plural) == "notification settings"
    assert NotificationSettings in admin.site._registry

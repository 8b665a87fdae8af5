"""Start-up work that must not happen when perfboard.settings is imported: the directories under var/."""
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


def ensure_directories() -> None:
    """Make the directories the embedded set-up writes to before anything opens them: the SQLite databases' (the
    database and the test database under var/), and STATIC_ROOT, which whitenoise reads when it starts (collectstatic
    fills it; media directories are made by the code that stores files there)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        for name in (db.get("NAME"), db.get("TEST", {}).get("NAME")):
            if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


class PerfboardConfig(AppConfig):
    name = "perfboard"
    verbose_name = "Perfboard"

    def ready(self):
        ensure_directories()

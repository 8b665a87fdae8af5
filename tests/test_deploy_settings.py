"""Production settings, as docker-compose.yml starts them: `manage.py check --deploy` has nothing to say, and with
DEBUG=0 Perfboard refuses to start without a secret key of its own (the embedded one is public)."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Variables a test's environment may carry that production's must not inherit.
OURS = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
        "MEDIA_ROOT", "STATIC_ROOT", "DJANGO_SETTINGS_MODULE")


def compose_environment(**given) -> dict:
    """The app services' environment in docker-compose.yml, its ${NAME:-default} and ${NAME:?error} filled from
    ``given`` as `docker compose` would fill them from the shell."""
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-app"]["environment"]

    def fill(match):
        name, op, word = match.group(1), match.group(2), match.group(3)
        if given.get(name):
            return given[name]
        assert op == ":-", f"docker compose would refuse to start: {word}"
        return word

    return {k: re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", fill, str(v)) for k, v in env.items()}


def manage(tmp_path, env, *args):
    base = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith(("SECURE_", "PERFBOARD_"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**base, "PERFBOARD_VAR_DIR": str(tmp_path), **env})


def test_check_deploy_is_clean_with_the_docker_compose_settings(tmp_path):
    env = compose_environment(SECRET_KEY=secrets.token_urlsafe(50))
    assert env["DEBUG"] == "0"
    done = manage(tmp_path, env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in compose_environment(SECRET_KEY="unused").items() if k != "SECRET_KEY"}
    done = manage(tmp_path, env, "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG=0" in done.stderr
    # Nor with the embedded development key, which anyone can read.
    done = manage(tmp_path, {**env, "SECRET_KEY": "perfboard-embedded-development-key-not-for-production"}, "check")
    assert done.returncode != 0 and "SECRET_KEY must be set when DEBUG=0" in done.stderr

"""Perfboard settings.

Everything that changes between machines comes from environment variables; the defaults are the embedded
set-up of `make run`: SQLite under var/, Celery tasks run in-process, debug on. Production (docker-compose.yml)
sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS.

Thresholds that change answers (minimum samples, failure-rate gate, detection windows) live in PERFBOARD below,
each documented there, and nowhere else.
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PERFBOARD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


DEBUG = env_bool("DEBUG", True)
# The embedded key is public (it is in this file): sessions, CSRF tokens and password-reset links signed with it can
# be forged by anyone, so production (DEBUG=0) refuses to start without a key of its own.
DEVELOPMENT_SECRET_KEY = "perfboard-embedded-development-key-not-for-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG=0: Perfboard needs a long random key of its own, e.g. "
        "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))'); "
        "the embedded development key is public and is refused.")
SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# HTTPS (`manage.py check --deploy`). With DEBUG=0 Perfboard expects to be reached over HTTPS only, usually through a
# TLS-terminating proxy in front of gunicorn: plain-HTTP requests are redirected, cookies are sent over HTTPS only,
# and browsers are told (HSTS) to use HTTPS for SECURE_HSTS_SECONDS. Behind a proxy, SECURE_PROXY_SSL_HEADER names
# the header it sets on HTTPS requests, as "HTTP_X_FORWARDED_PROTO,https": only where the proxy always sets or strips
# that header (a client could send it itself otherwise), and without it every proxied request would be redirected.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)  # a year; 0: no HSTS header
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Preloading (browsers' built-in HTTPS list) is a decision about a whole domain, its owner's to make and submit:
# off unless asked for, and check --deploy's reminder of it (security.W021) is silenced while it is off.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    _header, _, _value = os.environ["SECURE_PROXY_SSL_HEADER"].partition(",")
    if not (_header.strip() and _value.strip()):
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be a header and the value meaning HTTPS, "
                                   "e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "collector",
    "dashboard",
    "policy",
    "profiling",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "perfboard.urls"
WSGI_APPLICATION = "perfboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'perfboard.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Writers wait for each other instead of failing with "database is locked"; IMMEDIATE avoids the
    # read-then-upgrade deadlock two concurrent uploads would otherwise hit.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    # A file, not shared-cache memory, so tests with concurrent requests see real SQLite locking.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
WHITENOISE_USE_FINDERS = True

# Upload bodies are read by the ingest view itself, which answers 413 past PERFBOARD["MAX_UPLOAD_BYTES"].
DATA_UPLOAD_MAX_MEMORY_SIZE = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "collector.auth.RunnerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["collector.auth.ProjectReader"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "collector.pagination.RunPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Perfboard API",
    "DESCRIPTION": "Benchmark runs of Core ML models on iPhones, compute-unit policies and regression alerts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the app's own static files: users run Perfboard on closed networks.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "perfboard.openapi.document_common_errors"],
}

# Celery: with no broker configured, tasks run in-process so `make run` needs no Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks late, Redis hands a killed worker's task to another after this long; longer than any profiling job.
# Workers look for such tasks every tenth of it (1 to 10 s): kombu's own sweep, every ~100 s, would dominate a short
# timeout (tests/alerts/test_worker_killed.py uses 5 s). A worker killed during its sweep leaves the sweep's lock
# behind until the lock expires (kombu: 300 s), so it expires no later than the timeout.
_visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", 1800)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility_timeout,
                                   "unacked_restore_interval": max(1, min(10, _visibility_timeout // 10)),
                                   "unacked_restore_throttle": 1,
                                   "unacked_mutex_expire": max(1, min(300, _visibility_timeout))}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "check-regressions": {"task": "alerts.check_regressions", "schedule": 3600.0},  # hourly
    # dashboard/rollups.py: pages stay fast and current without making a viewer wait for a recompute
    "refresh-dashboard-rollups": {"task": "dashboard.refresh_stale_rollups",
                                  "schedule": env_float("PERFBOARD_DASHBOARD_ROLLUP_REFRESH_SECONDS", 300.0)},
    # profiling/jobs.py: uploads whose job could not be queued (broker down) are queued again once it is back
    "requeue-profiling-jobs": {"task": "profiling.requeue_unqueued_jobs", "schedule": 60.0},
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "perfboard@localhost")

PERFBOARD = {
    # Ingest limits (POST /api/v1/runs).
    "MAX_UPLOAD_BYTES": env_int("PERFBOARD_MAX_UPLOAD_BYTES", 64 * 1024 * 1024),
    # (Per-run limits — 1,000 runs a batch, 10,000 predictions a run — are the wire contract: collector/schema.py.)
    # A (device, compute units) cell with fewer runs is shown as under-sampled and cannot carry a policy.
    "MIN_RUNS": env_int("PERFBOARD_MIN_RUNS", 10),
    # Policy gate: a unit is eligible when its observed failure rate is at most this.
    "MAX_FAILURE_RATE": env_float("PERFBOARD_MAX_FAILURE_RATE", 0.005),
    # Compute-unit policy (GET /api/v1/policy, the policy pages; docs/compute-units.md): the workload priced when a
    # request names none (predictions per model load), and the unit answered when neither a device nor its chip has
    # enough evidence (cpuAndGPU never compiles for the Neural Engine; cpuOnly always ends the fallback chain).
    "POLICY_PREDICTIONS_PER_SESSION": env_int("PERFBOARD_POLICY_PREDICTIONS_PER_SESSION", 100),
    "POLICY_DEFAULT_COMPUTE_UNITS": os.environ.get("PERFBOARD_POLICY_DEFAULT_COMPUTE_UNITS", "cpuAndGPU"),
    # Variant A/B on the cold-start page reads at most this many of the newest successful runs (values, not medians).
    "AB_MAX_RUNS": env_int("PERFBOARD_AB_MAX_RUNS", 20_000),
    # Regression detection: smallest relative change worth an alert, and the significance levels of a chip's own
    # series and of the finer device and OS-cohort series (insights.settings.DetectionSettings explains both).
    "MIN_EFFECT": env_float("PERFBOARD_MIN_EFFECT", 0.05),
    "ALPHA": env_float("PERFBOARD_ALPHA", 0.005),
    "DETECTION_DRILLDOWN_ALPHA": env_float("PERFBOARD_DRILLDOWN_ALPHA", 0.001),
    # Webhooks to loopback, private and link-local addresses: refused in production (DEBUG=0), since project members
    # choose the URL and the worker would otherwise POST into the internal network; allowed for local development.
    "WEBHOOK_PRIVATE_ADDRESSES": env_bool("PERFBOARD_WEBHOOK_PRIVATE_ADDRESSES", DEBUG),
    "RETRY_BASE_SECONDS": env_float("PERFBOARD_RETRY_BASE_SECONDS", 10.0),  # task retries: base * 2**n, jittered
    # Dashboard: a model version's page aggregates (dashboard/rollups.py) are recomputed when runs of that version
    # arrived since, but at most once per this many seconds; meanwhile pages show them with the time they were made.
    "DASHBOARD_ROLLUP_MAX_AGE": env_float("PERFBOARD_DASHBOARD_ROLLUP_MAX_AGE", 60),
    # Queueing a task from a web request (perfboard.celery.publish): at most this many seconds to connect to the
    # broker and to send, one attempt. A broker that is down costs a page this long at most; the page then says the
    # work was not queued (the dashboard shows its older aggregates, an upload's job waits for the next line's retry).
    "BROKER_PUBLISH_TIMEOUT": env_float("PERFBOARD_BROKER_PUBLISH_TIMEOUT", 2.0),
    # Profiling jobs still queued without a task this many seconds after their upload (the broker was unreachable)
    # are queued again by Celery beat (profiling.requeue_unqueued_jobs, every minute).
    "PROFILING_REQUEUE_AFTER_SECONDS": env_float("PERFBOARD_PROFILING_REQUEUE_AFTER_SECONDS", 120),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

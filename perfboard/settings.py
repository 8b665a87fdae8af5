"""Perfboard settings.

Everything that changes between machines comes from environment variables; the defaults are the embedded
set-up of `make run`: SQLite under var/, Celery tasks run in-process, debug on. Production (docker-compose.yml)
sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS.

Perfboard's own settings (thresholds that change answers, limits, timeouts) are PERFBOARD's keys: each is declared
once in PERFBOARD_SETTINGS below, with its type, default and meaning, and read once from the environment. Code reads
them through perfboard.conf (``perfboard_setting(key)``, ``policy_settings()``, ``detection_settings()``, ...), which
refuses an undeclared key; nothing else reads the environment. Importing this module creates nothing: the
directories under var/ are made when Django starts (perfboard.apps) or by the code that writes there.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from insights.settings import ComparisonSettings, DetectionSettings, PolicySettings
from insights.vocabulary import COMPUTE_UNITS
from profiling.ziputil import Limits

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PERFBOARD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


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
# An index's INCLUDE columns (collector.Run's run_failed) are PostgreSQL's index-only scans; SQLite, the embedded
# default, builds the index without them, as intended, and need not say so on every command.
SILENCED_SYSTEM_CHECKS.append("models.W040")
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
    "whitenoise.runserver_nostatic",  # runserver (make run) serves static files as production does: whitenoise
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "perfboard",
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
WHITENOISE_USE_FINDERS = True
# collectstatic writes a gzip copy beside every static file, which whitenoise serves to browsers that accept it; a
# vendored file whose name carries its version (dashboard/vendor/plotly-cartesian-4.1.1.min.js) never changes under
# that name, so it is served as cacheable for ever.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_IMMUTABLE_FILE_TEST = r"/vendor/[^/]+-\d+\.\d+\.\d+(\.min)?\.js$"

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


# --- PERFBOARD: Perfboard's own settings ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One PERFBOARD key: its type, default and one-line meaning; the environment variable ``env`` (PERFBOARD_<key>
    unless named) overrides the default. A key that ``feeds`` a field of a settings class (``insights.settings``'
    PolicySettings, DetectionSettings, ComparisonSettings; profiling's upload Limits) takes that field's default,
    so the default is written once, where the statistics are; perfboard.conf builds those objects from the keys."""

    key: str
    type: type
    default: object
    meaning: str
    feeds: tuple[type, str] | None = None  # (settings class, field)
    env: str = ""
    choices: tuple = ()

    @classmethod
    def feeding(cls, target: type, field: str, key: str, meaning: str, **options) -> "Setting":
        default = getattr(target, field)  # a dataclass field's default
        return cls(key, type(default), default, meaning, feeds=(target, field), **options)

    @property
    def env_name(self) -> str:
        return self.env or f"PERFBOARD_{self.key}"

    def read(self, environ) -> object:
        raw = environ.get(self.env_name)
        if raw is None or not raw.strip():
            value = self.default
        elif self.type is bool:
            value = raw.strip().lower() in {"1", "true", "yes", "on"}
        else:
            try:
                value = self.type(raw.strip())
            except ValueError:
                raise ImproperlyConfigured(f"{self.env_name} must be {self.type.__name__}, not {raw!r}") from None
        if self.choices and value not in self.choices:
            raise ImproperlyConfigured(f"{self.env_name} must be one of {', '.join(map(str, self.choices))}, "
                                       f"not {value!r}")
        return value


# Every PERFBOARD key, once. README's Settings section points here; tests/test_settings.py fails when code reads a key
# that is not in this table.
PERFBOARD_SETTINGS = (
    # Ingest (POST /api/v1/runs). Per-run limits (1,000 runs a batch, 10,000 predictions a run) are the wire
    # contract: collector/schema.py.
    Setting("MAX_UPLOAD_BYTES", int, 64 * 1024 * 1024, "largest upload body; larger ones are answered 413"),
    # Compute-unit policy (GET /api/v1/policy, the policy pages; docs/compute-units.md; PolicySettings explains each).
    Setting.feeding(PolicySettings, "min_runs", "MIN_RUNS",
                    "runs a (device or chip, compute units) cell needs to carry a policy; fewer: under-sampled"),
    Setting.feeding(PolicySettings, "max_failure_rate", "MAX_FAILURE_RATE",
                    "highest observed failure rate of an eligible compute unit"),
    Setting.feeding(PolicySettings, "default_compute_units", "POLICY_DEFAULT_COMPUTE_UNITS",
                    "the unit answered when neither a device nor its chip has enough evidence",
                    choices=COMPUTE_UNITS),
    Setting.feeding(PolicySettings, "confidence", "POLICY_CONFIDENCE", "level of the policy's failure-rate intervals"),
    Setting("POLICY_PREDICTIONS_PER_SESSION", int, 100,
            "the workload priced when a request names none: predictions per model load"),
    # Variant A/B (the cold-start page; ComparisonSettings).
    Setting("AB_MAX_RUNS", int, 20_000, "newest successful runs having the metric a variant comparison reads at most "
            "where no sketch answers (a filter finer than a day)"),
    Setting.feeding(ComparisonSettings, "min_runs", "COMPARISON_MIN_RUNS", "runs a variant needs to be compared"),
    Setting.feeding(ComparisonSettings, "confidence", "COMPARISON_CONFIDENCE",
                    "level of a variant comparison's bootstrap interval"),
    Setting.feeding(ComparisonSettings, "n_resamples", "COMPARISON_RESAMPLES",
                    "bootstrap resamples of a variant comparison"),
    # Regression detection (alerts.check; DetectionSettings explains each and the benchmarks behind the defaults).
    Setting.feeding(DetectionSettings, "min_effect", "MIN_EFFECT",
                    "smallest relative change of a median worth an alert"),
    Setting.feeding(DetectionSettings, "alpha", "ALPHA", "significance level of a chip's own series"),
    Setting.feeding(DetectionSettings, "drilldown_alpha", "DETECTION_DRILLDOWN_ALPHA",
                    "significance level of the finer device and OS-cohort series", env="PERFBOARD_DRILLDOWN_ALPHA"),
    Setting.feeding(DetectionSettings, "min_runs_per_window", "DETECTION_MIN_RUNS",
                    "runs the baseline and the current window each need before a test"),
    Setting.feeding(DetectionSettings, "max_baseline_runs", "DETECTION_MAX_BASELINE_RUNS",
                    "runs before the version under test that form its baseline, at most"),
    Setting.feeding(DetectionSettings, "max_current_runs", "DETECTION_MAX_CURRENT_RUNS",
                    "runs from the version under test on that form its window, at most"),
    Setting.feeding(DetectionSettings, "location_margin", "DETECTION_LOCATION_MARGIN",
                    "how much better a split must fit than all others for an alert to name its version"),
    Setting.feeding(DetectionSettings, "shared_unit_alpha", "DETECTION_SHARED_UNIT_ALPHA",
                    "level at which a unit's own runs confirm a slowdown shared by all units of a chip"),
    Setting.feeding(DetectionSettings, "crash_alpha", "DETECTION_CRASH_ALPHA",
                    "significance level of the failure-rate test (one-sided Fisher)"),
    Setting.feeding(DetectionSettings, "min_failure_rate_ratio", "DETECTION_MIN_FAILURE_RATE_RATIO",
                    "smallest multiple of the baseline's failure rate worth an alert"),
    Setting.feeding(DetectionSettings, "max_failure_baseline_runs", "DETECTION_MAX_FAILURE_BASELINE_RUNS",
                    "runs the failure-rate baseline reads at most"),
    Setting.feeding(DetectionSettings, "min_placement_share_drop", "MIN_PLACEMENT_SHARE_DROP",
                    "fall of the Neural Engine share that makes a placement shift an alert (0: any op leaving it)"),
    Setting.feeding(DetectionSettings, "fallback_min_runs", "FALLBACK_MIN_RUNS",
                    "successful runs a Neural Engine unit and cpuOnly each need before timing may call it on the CPU"),
    Setting.feeding(DetectionSettings, "fallback_margin", "FALLBACK_MARGIN",
                    "how close to cpuOnly's warm predictions a Neural Engine unit's must be to count as on the CPU"),
    Setting.feeding(DetectionSettings, "fallback_alpha", "FALLBACK_ALPHA",
                    "level of the two one-sided tests that its predictions are within that margin of cpuOnly's"),
    Setting.feeding(DetectionSettings, "fallback_min_plans", "FALLBACK_MIN_PLANS",
                    "compute plans a unit needs before its plans alone may mark it as on the CPU"),
    # Notifications and their tasks (alerts.tasks: Celery's retry_backoff, whole seconds).
    Setting("WEBHOOK_PRIVATE_ADDRESSES", bool, DEBUG,
            "allow webhooks to loopback, private and link-local addresses (members choose the URL: off in "
            "production)"),
    Setting("RETRY_BASE_SECONDS", int, 10, "first retry delay of a failing task; doubled each retry, jittered"),
    Setting("RETRY_MAX_SECONDS", int, 3600, "longest retry delay of a failing task"),
    Setting("RETRY_MAX_RETRIES", int, 8, "retries of a failing task before it fails for good"),
    # Queueing from a web request (perfboard.celery.publish): one attempt, bounded; the page then says what was not
    # queued.
    Setting("BROKER_PUBLISH_TIMEOUT", float, 2.0, "seconds a web request waits to connect to the broker and to send"),
    # Profiling (profiling/jobs.py).
    Setting("PROFILING_REQUEUE_AFTER_SECONDS", float, 120.0,
            "seconds after its upload a job that could not be queued is queued again by Celery beat"),
    Setting("PROFILING_MACOS_WORKERS", bool, False, "a macOS worker consumes queue 'macos' and measures on devices"),
    Setting.feeding(Limits, "max_upload_bytes", "PROFILING_MAX_UPLOAD_BYTES", "largest model upload"),
    Setting.feeding(Limits, "max_uncompressed_bytes", "PROFILING_MAX_UNCOMPRESSED_BYTES",
                    "largest uncompressed size of an uploaded archive"),
)
PERFBOARD = {s.key: s.read(os.environ) for s in PERFBOARD_SETTINGS}

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
# Folds (seconds apart, a few hundred ms each) have a queue of their own, so they never wait behind profiling jobs
# (minutes each) while reads merge a growing backlog. A worker started without --queues consumes both; production
# runs one process on "sketches" (docker-compose.yml: sketches).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("sketches"))
CELERY_TASK_ROUTES = {"collector.fold_pending_sketches": {"queue": "sketches"}}
# Celery's Django fixup closes the database connection after every task unless told how many tasks may reuse it: a
# fold every few seconds paid a new PostgreSQL backend each time. perfboard/celery.py closes broken or expired
# connections (CONN_MAX_AGE) before each task, as Django does around a request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "check-regressions": {"task": "alerts.check_regressions", "schedule": 3600.0},  # hourly
    # profiling/jobs.py: uploads whose job could not be queued (broker down) are queued again once it is back
    "requeue-profiling-jobs": {"task": "profiling.requeue_unqueued_jobs", "schedule": 60.0},
    # collector/ingest.py queues a fold after uploads (at most once a second per process); this one catches the rest
    "fold-pending-sketches": {"task": "collector.fold_pending_sketches", "schedule": 5.0},
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "perfboard@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

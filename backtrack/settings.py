"""Backtrack settings: everything comes from the environment (django-environ).

Defaults work with nothing configured: SQLite under var/, Redis on localhost, media under media/,
the best General MIDI SoundFont installed. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
DEBUG=false, ALLOWED_HOSTS and (for several machines) S3-compatible storage.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _env_or_fail(read: Any, name: str, **kwargs: Any) -> Any:
    """Read one variable; a malformed value stops start-up with a message that names it."""
    try:
        return read(name, **kwargs)
    except ImproperlyConfigured:
        raise
    except Exception as exc:
        raise ImproperlyConfigured(f"{name} is not valid: {exc}") from exc


def _strict_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} is not valid: {raw!r} is not one of true/false/1/0/yes/no/on/off.")


DEBUG: bool = _strict_bool("DEBUG", default=True)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: a random key kept on this machine, never in the repository.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS: list[str] = _env_or_fail(
    env.list, "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL: str = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "performers",
    "tracks",
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
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "backtrack.urls"
WSGI_APPLICATION = "backtrack.wsgi.application"

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
                "tracks.context_processors.notifications",
            ],
        },
    },
]

# Database: SQLite by default, PostgreSQL (or anything django-environ knows) from DATABASE_URL.
_database_url: str = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
_scheme = _database_url.split("://", 1)[0] if "://" in _database_url else ""
if _scheme not in environ.Env.DB_SCHEMES:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not valid: {_scheme or _database_url!r} is not a known database scheme "
        "(use postgres://user@host:5432/name or sqlite:////absolute/path.sqlite3)."
    )
DATABASES = {"default": _env_or_fail(env.db_url, "DATABASE_URL", default=_database_url)}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Workers and the web server write concurrently: wait for locks instead of failing at once.
    # IMMEDIATE: a writer takes the lock when its transaction starts, so it waits its turn
    # instead of failing with "database is locked" when upgrading a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # The test database sits beside the configured one, so test runs with different DATABASE_URLs
    # (parallel checkouts, helpers) never share it.
    _sqlite_name = Path(str(DATABASES["default"]["NAME"]))
    DATABASES["default"]["TEST"] = {"NAME": str(_sqlite_name.with_name(f"test_{_sqlite_name.stem}.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "performers.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tracks:home"
LOGOUT_REDIRECT_URL = "tracks:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Redis: Celery broker and result backend, and the cache that throttles share between web processes.
REDIS_URL: str = _env_or_fail(env.str, "REDIS_URL", default="redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL is not valid: it must start with redis://, rediss:// or unix://")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": "backtrack",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# Storage: the filesystem by default; S3-compatible storage (django-storages) when a bucket is named,
# so workers on other machines read arrangements and write renders in the same place.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME: str = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Worker-local scratch space: stems (float32, re-used for mix-only changes) and temporary renders.
RENDER_CACHE_DIR = Path(env.str("RENDER_CACHE_DIR", default=str(VAR_DIR / "render-cache")))


def _default_soundfont() -> str:
    for candidate in (
        "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "/usr/share/soundfonts/FluidR3_GM.sf2",
        "/usr/share/sounds/sf2/TimGM6mb.sf2",
    ):
        if Path(candidate).is_file():
            return candidate
    return "/usr/share/sounds/sf2/FluidR3_GM.sf2"


SOUNDFONT_PATH: str = env.str("SOUNDFONT_PATH", default="") or _default_soundfont()
MIDI_MAX_BYTES: int = env.int("MIDI_MAX_BYTES", default=1_000_000)
RENDER_STORAGE_BUDGET_MB: int = env.int("RENDER_STORAGE_BUDGET_MB", default=2048)
RENDER_MAX_ACTIVE_PER_USER: int = env.int("RENDER_MAX_ACTIVE_PER_USER", default=3)
RENDER_MAX_ATTEMPTS: int = env.int("RENDER_MAX_ATTEMPTS", default=2)
# Floods: comments a user may post (every path counts), and how often one person gets an email
# (notifications in between are batched into one digest).
COMMENTS_PER_MINUTE: int = env.int("COMMENTS_PER_MINUTE", default=10)
COMMENTS_PER_HOUR: int = env.int("COMMENTS_PER_HOUR", default=60)
NOTIFICATION_EMAIL_INTERVAL_S: int = env.int("NOTIFICATION_EMAIL_INTERVAL_S", default=600)

# Celery: Redis broker; a render queue wants late acks (a killed worker's task comes back),
# prefetch 1 (long tasks), time limits, and a visibility timeout longer than the hard limit
# so Redis does not hand a running task to a second worker.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT: int = env.int("RENDER_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT: int = env.int("RENDER_HARD_TIME_LIMIT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 4}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 4}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "renders-requeue-stale": {"task": "tracks.tasks.renders_requeue_stale", "schedule": 60.0},
    "renders-prune": {"task": "tracks.tasks.renders_prune", "schedule": 15 * 60.0},
    "notifications-email-digest": {"task": "tracks.tasks.notifications_email_digest", "schedule": 60.0},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_PARSER_CLASSES": [
        "backtrack.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "backtrack.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "uploads": env.str("THROTTLE_UPLOADS", default="30/hour"),
        "renders": env.str("THROTTLE_RENDERS", default="120/hour"),
        "auth": env.str("THROTTLE_AUTH", default="30/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Backtrack API",
    "DESCRIPTION": "Customize backing tracks together: key, tempo, mix; renders by Celery workers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: the docs work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

EMAIL_BACKEND: str = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="Backtrack <noreply@backtrack.local>")

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = not DEBUG and env.bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

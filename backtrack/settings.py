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

from backtrack import queues, sound_sets

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
    # First: a body over its limit is refused before anything (CSRF, sessions) reads it.
    "backtrack.middleware.RequestBodyLimitMiddleware",
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
            # Downloads redirect to a signed URL: short-lived, so a shared link soon stops working.
            "querystring_expire": _env_or_fail(env.int, "AWS_QUERYSTRING_EXPIRE", default=300),
            "signature_version": "s3v4",
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
# The engine's configuration (tracks/engine_config.py passes it in; the engine reads no environment):
# render threads (default: the machine's cores, at most 4), where the per-core lock files live, the
# ffmpeg/ffprobe executables, and the stem scratch space one render may plan (refused above it).
RENDER_THREADS: int | None = _env_or_fail(env.int, "RENDER_THREADS", default=None)
if RENDER_THREADS is not None and RENDER_THREADS < 1:
    raise ImproperlyConfigured("RENDER_THREADS is not valid: it must be 1 or more.")
RENDER_SLOTS_DIR: str = env.str("RENDER_SLOTS_DIR", default="")
FFMPEG_PATH: str = env.str("FFMPEG_PATH", default="ffmpeg")
FFPROBE_PATH: str = env.str("FFPROBE_PATH", default="ffprobe")
RENDER_MAX_SCRATCH_MB: int = _env_or_fail(env.int, "RENDER_MAX_SCRATCH_MB", default=8000)


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
# Sound sets a render may ask for (`sound`; GET /api/sounds/): slug -> SoundFont. By default the
# known Debian sets that are installed; SOUND_SETS="fluidr3,musescore" or "slug=/path/file.sf2,..."
# names them (a named set whose file is missing fails `manage.py check`). SOUNDFONT_PATH's set is
# the default sound of a track that names none.
SOUND_SETS: dict[str, dict[str, str]] = _env_or_fail(
    lambda name: sound_sets.parse(env.str(name, default=""), default_path=SOUNDFONT_PATH), "SOUND_SETS"
)
SOUND_DEFAULT: str = sound_sets.default_slug(SOUND_SETS, SOUNDFONT_PATH) or "default"
MIDI_MAX_BYTES: int = env.int("MIDI_MAX_BYTES", default=1_000_000)
# Request bodies (backtrack/middleware.py refuses larger ones with 413 before reading them): uploads
# may carry MIDI_MAX_BYTES more than any other request. An accepted upload stays in memory, so no
# request ever writes to the temporary folder.
REQUEST_BODY_MAX_BYTES: int = _env_or_fail(env.int, "REQUEST_BODY_MAX_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MIDI_MAX_BYTES + REQUEST_BODY_MAX_BYTES
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
# so Redis does not hand a running task to a second worker. No result backend: nothing reads task
# results (a render records its outcome on its row). Publishing tries the broker once
# ("max_retries": 0, a 1 s connect timeout): a request while Redis is down answers 503 at once and
# its render stays queued for the sweeper (workers reconnect with their own, patient retry policy).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT: int = env.int("RENDER_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT: int = env.int("RENDER_HARD_TIME_LIMIT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT * 4,
    "max_retries": 0,
    "socket_connect_timeout": 1,
    "queue_order_strategy": "sorted",  # a worker reads its queues in sorted order: stems last
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True
# Queues (backtrack/queues.py): renders, stems, maintenance; a worker serves those in WORKER_QUEUES
# (`celery -A backtrack worker -Q …` overrides), reading them in sorted order (stems last).
WORKER_QUEUES: str = env.str("WORKER_QUEUES", default=",".join(queues.QUEUES))
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT_QUEUE
CELERY_TASK_ROUTES = queues.task_routes()
try:
    CELERY_TASK_QUEUES = queues.worker_queues(WORKER_QUEUES)
except ValueError as exc:
    raise ImproperlyConfigured(f"WORKER_QUEUES is not valid: {exc}") from exc
# GET /metrics (backtrack/metrics.py): open to loopback and staff, or with `Authorization: Bearer
# METRICS_TOKEN`; workers count render durations and failures in this Redis hash (on the broker).
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
# Stems that travel (tracks/services/stems.py): stem sets shared through the media storage, so a mix
# change on another machine fetches them instead of synthesizing (on by default with S3: on one
# machine's filesystem they would only be a second copy). Each worker prunes its own RENDER_CACHE_DIR
# every RENDER_CACHE_PRUNE_INTERVAL_S (0: never; a timer in the worker, backtrack/celery.py).
RENDER_SHARE_STEMS: bool = _strict_bool("RENDER_SHARE_STEMS", bool(AWS_STORAGE_BUCKET_NAME))
# A worker fetches a stem set only when that is faster than synthesizing; until it has measured its
# own fetches it assumes the storage delivers this many MB/s (moto on loopback: 43-62).
RENDER_STEMS_FETCH_MB_PER_S: float = _env_or_fail(env.float, "RENDER_STEMS_FETCH_MB_PER_S", default=50.0)
if RENDER_STEMS_FETCH_MB_PER_S <= 0:
    raise ImproperlyConfigured("RENDER_STEMS_FETCH_MB_PER_S is not valid: it must be more than 0.")
RENDER_CACHE_PRUNE_INTERVAL_S: float = _env_or_fail(env.float, "RENDER_CACHE_PRUNE_INTERVAL_S", default=900.0)
METRICS_REDIS_KEY = "backtrack:metrics"
# Instant listening (tracks/services/listening.py): a streamed render's frames stay in Redis this
# long after its last frame; a listener gives up on a render that has not moved for LISTEN_MAX_WAIT_S.
LISTEN_STREAM_TTL_S: float = _env_or_fail(env.float, "LISTEN_STREAM_TTL_S", default=900.0)
LISTEN_MAX_WAIT_S: float = _env_or_fail(env.float, "LISTEN_MAX_WAIT_S", default=120.0)
# Recovery (tracks/services/renders.py, render_requeue_stale, run by beat every RENDER_SWEEP_INTERVAL_S):
# a rendering render whose heartbeat (written every RENDER_HEARTBEAT_S) is older than
# RENDER_HEARTBEAT_TIMEOUT_S lost its worker; a queued render enqueued more than RENDER_LOST_GRACE_S
# ago whose message is not in Redis was lost by the broker. Both are re-queued. Worst case with the
# defaults: a dead worker is seen 30 s after its last heartbeat plus at most one sweep (15 s), 45 s;
# a lost message at most 20 s + 15 s = 35 s after it was enqueued, or 15 s after Redis is back.
RENDER_HEARTBEAT_S: float = _env_or_fail(env.float, "RENDER_HEARTBEAT_S", default=5.0)
RENDER_HEARTBEAT_TIMEOUT_S: float = _env_or_fail(env.float, "RENDER_HEARTBEAT_TIMEOUT_S", default=30.0)
RENDER_SWEEP_INTERVAL_S: float = _env_or_fail(env.float, "RENDER_SWEEP_INTERVAL_S", default=15.0)
RENDER_LOST_GRACE_S: float = _env_or_fail(env.float, "RENDER_LOST_GRACE_S", default=20.0)
if not 0 < RENDER_HEARTBEAT_S * 2 <= RENDER_HEARTBEAT_TIMEOUT_S:
    raise ImproperlyConfigured(
        "RENDER_HEARTBEAT_TIMEOUT_S is not valid: it must be at least twice RENDER_HEARTBEAT_S (> 0)."
    )
if RENDER_SWEEP_INTERVAL_S <= 0 or RENDER_LOST_GRACE_S < 0:
    raise ImproperlyConfigured("RENDER_SWEEP_INTERVAL_S must be > 0 and RENDER_LOST_GRACE_S >= 0.")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "renders-requeue-stale": {
        "task": "tracks.tasks.renders_requeue_stale",
        "schedule": RENDER_SWEEP_INTERVAL_S,
        # A sweep that waited a whole interval behind renders is superseded by the next one.
        "options": {"expires": RENDER_SWEEP_INTERVAL_S},
    },
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
# Throttling (backtrack/throttling.py). TRUSTED_PROXIES: how many proxies of ours stand in front of
# the app; 0 ignores X-Forwarded-For (any client can send it). DRF's throttles use the same count.
TRUSTED_PROXIES: int = _env_or_fail(env.int, "TRUSTED_PROXIES", default=0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("TRUSTED_PROXIES is not valid: it must be 0 or more.")
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXIES
# Password guessing: login attempts per client address, failed logins per account, sign-up attempts
# per address; every login path (page, admin, API token) and both sign-up paths count.
LOGIN_ATTEMPTS_PER_IP: int = _env_or_fail(env.int, "LOGIN_ATTEMPTS_PER_IP", default=20)
LOGIN_FAILURES_PER_USERNAME: int = _env_or_fail(env.int, "LOGIN_FAILURES_PER_USERNAME", default=10)
LOGIN_WINDOW_S: int = _env_or_fail(env.int, "LOGIN_WINDOW_S", default=600)
SIGNUPS_PER_IP: int = _env_or_fail(env.int, "SIGNUPS_PER_IP", default=10)
SIGNUP_WINDOW_S: int = _env_or_fail(env.int, "SIGNUP_WINDOW_S", default=3600)
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

# HTTPS: with DEBUG off the secure choices are the defaults (`check --deploy` is clean); each can be
# turned off, e.g. for plain HTTP on localhost. Behind a TLS-terminating proxy, name the header it
# sets (SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO) or every request looks like plain HTTP and
# the redirect loops. /healthz answers over HTTP so load balancers can probe it.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS: int = _env_or_fail(env.int, "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _strict_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a promise to browsers that is slow to take back, so it is asked for, never assumed;
# Django's reminder about it (security.W021) is silenced for that reason.
SECURE_HSTS_PRELOAD = _strict_bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SESSION_COOKIE_SECURE = _strict_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE


def _proxy_ssl_header() -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (or X-Forwarded-Proto) -> (META key, "https")."""
    name = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
    if not name:
        return None
    key = name.upper().replace("-", "_")
    if not key.startswith("HTTP_"):
        key = f"HTTP_{key}"
    if not key[5:] or not all(char.isalnum() or char == "_" for char in key):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER is not valid: {name!r} is not a header name.")
    return key, "https"


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

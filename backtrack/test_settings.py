"""Settings for the test suite: the real settings, with fast and isolated pieces swapped in.

Integration tests start a real Celery worker with this same module, so nothing here may be
process-local where the worker must see it (database and media come from the environment).
"""

import os
from pathlib import Path

os.environ.setdefault("SOUNDFONT_PATH", "/usr/share/sounds/sf2/TimGM6mb.sf2")
os.environ.setdefault("MEDIA_ROOT", str(Path(__file__).resolve().parent.parent / "var" / "test-media"))
os.environ.setdefault(
    "RENDER_CACHE_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test-render-cache")
)

from backtrack import queues
from backtrack.settings import *  # noqa: F403
from backtrack.settings import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {**REST_FRAMEWORK}

# Tests publish to their own queues (every queue prefixed with BACKTRACK_TEST_QUEUE), so a
# developer's running worker never takes a test's task (integration tests start a worker with this
# same settings module, so it consumes these queues).
TEST_QUEUE_PREFIX = os.environ.get("BACKTRACK_TEST_QUEUE", "backtrack-test")
CELERY_TASK_DEFAULT_QUEUE = queues.queue_name(queues.DEFAULT_QUEUE, prefix=TEST_QUEUE_PREFIX)
CELERY_TASK_ROUTES = queues.task_routes(prefix=TEST_QUEUE_PREFIX)
CELERY_TASK_QUEUES = queues.worker_queues(WORKER_QUEUES, prefix=TEST_QUEUE_PREFIX)  # noqa: F405
METRICS_REDIS_KEY = f"{TEST_QUEUE_PREFIX}:metrics"

"""WSGI entry point (gunicorn backtrack.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtrack.settings")

application = get_wsgi_application()

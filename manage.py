#!/usr/bin/env python
"""Django's command-line utility, with one-line errors for bad configuration instead of tracebacks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtrack.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.core.management import execute_from_command_line
        from django.db.utils import OperationalError

        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"error: configuration: {exc}\n")
        sys.exit(2)
    except OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        sys.stderr.write(f"error: cannot use the database named by DATABASE_URL: {reason}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()

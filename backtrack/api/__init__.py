"""API plumbing every app's API imports: the error handler, throttles, pagination, parsers, users."""

# One image for the web server, the Celery worker and beat.
FROM python:3.11-slim-bookworm

# Production by default: DEBUG off means SECRET_KEY is required, and HTTPS redirect, HSTS and secure
# cookies are on (see the README's configuration table to turn each off, e.g. for plain HTTP).
ENV DEBUG=false \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SOUNDFONT_PATH=/usr/share/sounds/sf2/FluidR3_GM.sf2 \
    MEDIA_ROOT=/data/media \
    RENDER_CACHE_DIR=/data/render-cache \
    STATIC_ROOT=/app/staticfiles

RUN apt-get update \
    && apt-get install -y --no-install-recommends fluidsynth libfluidsynth3 ffmpeg fluid-soundfont-gm \
       timgm6mb-soundfont musescore-general-soundfont espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backtrack ./backtrack
COPY tracks ./tracks
COPY performers ./performers
RUN pip install .
COPY . .
# collectstatic needs no database; a throwaway key keeps settings importable at build time only.
RUN SECRET_KEY=build-only-not-secret python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 backtrack && mkdir -p /data && chown backtrack /data
USER backtrack
EXPOSE 8000
# Threads, not sync workers: a listener of a render's stream holds its request for the whole song.
CMD ["gunicorn", "backtrack.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-class", "gthread", "--threads", "16"]

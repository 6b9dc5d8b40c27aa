# Backtrack: `make run` starts the whole app on this machine, `make test` runs the whole suite.
# Both install what is missing first (Debian packages as root, Python packages into .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
REDIS_URL ?= redis://127.0.0.1:6379/0
export HOST PORT REDIS_URL

RUN_DEBS := fluidsynth libfluidsynth3 ffmpeg fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont redis-server redis-tools espeak-ng
TEST_DEBS := fluidsynth libfluidsynth3 ffmpeg timgm6mb-soundfont fluid-soundfont-gm redis-server redis-tools chromium chromium-driver espeak-ng

.PHONY: run test lint format bench deps-run deps-test _debs venv redis clean

run: deps-run venv
	@$(PY) -m backtrack.devtools.redis_ensure --mode procfile
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@if (exec 3<>/dev/tcp/$(HOST)/$(PORT)) 2>/dev/null; then \
		echo "error: something already listens on $(HOST):$(PORT) (is make run already running?); set PORT=..." >&2; exit 1; fi
	@cp Procfile var/Procfile.run
	@if [ -f var/redis.started-by-make-run ]; then \
		echo "redis: .venv/bin/python -m backtrack.devtools.redis_foreground" >> var/Procfile.run; fi
	@echo
	@echo "  Backtrack is starting at http://$(HOST):$(PORT)/   (admin: /admin/, health: /healthz, API docs: /api/docs/)"
	@echo "  A worker serves renders; a lower-priority one builds stems and measures uploads (stems, maintenance queues); media on the filesystem; metrics: /metrics"
	@echo "  Demo logins: producer / backtrack-demo   and   singer / backtrack-demo"
	@echo "  Ctrl-C stops the web server, the worker and everything else this command started."
	@echo
	$(VENV)/bin/honcho start -f var/Procfile.run

test: deps-test venv redis
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: deps-test venv
	$(PY) bench/render.py

# Debian packages: installed only when one is missing (apt-get needs root; sudo is used when present).
deps-run:
	@$(MAKE) --no-print-directory _debs DEBS="$(RUN_DEBS)"

deps-test:
	@$(MAKE) --no-print-directory _debs DEBS="$(TEST_DEBS)"

_debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Python packages: reinstalled only when pyproject.toml changes.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Start a Redis only when none answers at REDIS_URL; remember that we did so `make run` stops it again.
redis: venv
	@$(PY) -m backtrack.devtools.redis_ensure --mode daemon

clean:
	rm -rf var/test-media var/test-render-cache test-artifacts .pytest_cache .mypy_cache .ruff_cache

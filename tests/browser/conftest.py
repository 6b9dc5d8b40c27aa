"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server, with a
real Celery worker process rendering into the same database and media folder.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body are
# still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
WORKER_READY_TIMEOUT_S = 60
# A form sent back with errors answers 400 on purpose; Chromium logs every 4xx document as a console error.
FORM_REFUSED = "the server responded with a status of 400"


@pytest.fixture(autouse=True)
def seeded_genres(transactional_db: None) -> None:
    """Put back the genres the data migration seeds: a transactional test's flush removes them.

    (serialized_rollback cannot do it here: under Playwright's running event loop Django hands the test
    a fresh connection object without the serialized copy.)
    """
    from performers.models import Genre

    migration = importlib.import_module("performers.migrations.0003_seed_genres")
    for slug, name in migration.GENRES:
        Genre.objects.update_or_create(slug=slug, defaults={"name": name})


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser, live_server: Any) -> Iterator[Any]:
    """Make pages in fresh contexts (separate cookies = separate people); all closed afterwards.

    Every page must run without a JavaScript error and fetch nothing from outside the app (no CDN:
    the app works offline).
    """
    contexts: list[BrowserContext] = []
    problems: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: problems.append(f"JS error on {page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console error on {page.url}: {message.text}")
                if message.type == "error" and FORM_REFUSED not in message.text
                else None
            ),
        )
        page.on(
            "request",
            lambda request: (
                problems.append(f"outside request: {request.url}")
                if not request.url.startswith((live_server.url, "data:", "blob:"))
                else None
            ),
        )

    def make(*, width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        watch(page)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def screenshot() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def _database_url() -> str:
    """The test database as a URL the worker's settings understand."""
    db = connection.settings_dict
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("the browser tests need a file-based SQLite test database")
        return f"sqlite:///{name}"
    if engine.endswith(("postgresql", "postgis")):
        user = db.get("USER") or ""
        password = db.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{db['NAME']}"
    raise RuntimeError(f"no worker database URL for {engine}")


@pytest.fixture
def celery_worker(transactional_db: None, isolated_media: Path, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """One real worker (`celery -A backtrack worker -c 1`) on the test database and this test's media."""
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backtrack.test_settings",
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(isolated_media),
        "RENDER_CACHE_DIR": str(tmp_path / "render-cache"),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    celery = Path(sys.executable).with_name("celery")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "backtrack",
                "worker",
                "-c",
                "1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"browser-{os.getpid()}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while " ready." not in log_path.read_text():
            if process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.returncode not in (0, -15):
            sys.stderr.write(log_path.read_text())

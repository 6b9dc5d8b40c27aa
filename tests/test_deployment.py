"""docker-compose.yml cannot be run here, so it is checked by reading it."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def load_compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_compose_has_the_production_services() -> None:
    services = load_compose()["services"]
    assert {"web", "worker", "redis", "db"} <= set(services)
    assert "--appendonly yes" in services["redis"]["command"]
    assert services["db"]["image"].startswith("postgres")


def test_every_app_command_names_a_real_module() -> None:
    services = load_compose()["services"]
    for name in ("web", "worker", "beat"):
        words = command_words(services[name])
        joined = " ".join(words)
        if "gunicorn" in joined:
            target = next(word for word in joined.split() if ":application" in word)
            module_name, attribute = target.split(":")
            assert hasattr(importlib.import_module(module_name), attribute), target
        if "celery" in words[0]:
            app_module = words[words.index("-A") + 1]
            module = importlib.import_module(app_module)
            assert module.celery_app.main == "backtrack"
        if "manage.py" in joined:
            assert (REPO / "manage.py").is_file()


def test_app_services_share_the_media_volume_and_one_image() -> None:
    compose = load_compose()
    services = compose["services"]
    mounts = {name: services[name]["volumes"] for name in ("web", "worker", "beat")}
    for volumes in mounts.values():
        assert "media:/data" in volumes
    assert "media" in compose["volumes"]
    assert {services[name]["image"] for name in ("web", "worker", "beat")} == {"backtrack:latest"}
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["MEDIA_ROOT"].startswith("/data")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgres://")


def test_dockerfile_installs_the_renderer_dependencies() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("fluidsynth", "libfluidsynth3", "ffmpeg", "fluid-soundfont-gm"):
        assert package in dockerfile

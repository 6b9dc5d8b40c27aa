"""The engine is configured by arguments: an EngineConfig passed in, never the environment."""

import os
import re
from pathlib import Path

import pytest

from tracks.engine import EngineConfig, InvalidSettings

from .conftest import REPO_ROOT

ENGINE = REPO_ROOT / "tracks" / "engine"


def test_no_engine_module_reads_the_environment() -> None:
    # Given every source file of the engine
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 10
    # When they are searched for environment reads
    readers = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\benviron\b|\bgetenv\b|\bputenv\b", line)
    ]
    # Then there is none
    assert readers == []


def test_defaults_come_from_the_machine_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables that used to configure the engine, set to odd values
    monkeypatch.setenv("RENDER_THREADS", "7")
    monkeypatch.setenv("BACKTRACK_RENDER_SLOTS_DIR", "/nonexistent/slots")
    monkeypatch.setenv("BACKTRACK_FFMPEG", "/nonexistent/ffmpeg")
    # When a config is made with no arguments
    config = EngineConfig()
    # Then it ignores them
    assert config.render_threads == max(1, min(4, os.cpu_count() or 1))
    assert config.render_slot_dir != Path("/nonexistent/slots")
    assert (config.ffmpeg, config.ffprobe) == ("ffmpeg", "ffprobe")
    assert config.max_scratch_bytes == 8_000_000_000


def test_a_config_says_what_it_was_given(tmp_path: Path) -> None:
    config = EngineConfig(threads=3, slot_dir=tmp_path, ffmpeg="/opt/ffmpeg", max_scratch_bytes=None)
    assert (config.render_threads, config.render_slot_dir, config.ffmpeg) == (3, tmp_path, "/opt/ffmpeg")
    assert config.max_scratch_bytes is None


@pytest.mark.parametrize(
    "kwargs", [{"max_scratch_bytes": 0}, {"ffmpeg": ""}, {"threads": 0}], ids=["scratch", "ffmpeg", "threads"]
)
def test_a_nonsense_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSettings):
        EngineConfig(**kwargs)

"""Bad configuration stops with one clear line that names the setting, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backtrack.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "command", "setting"),
    [
        ({"DATABASE_URL": "foo://nowhere/db"}, "check", "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "check", "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/backtrack"}, "migrate", "DATABASE_URL"),
        ({"SOUNDFONT_PATH": "/nonexistent/General.sf2"}, "check", "SOUNDFONT_PATH"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "check", "REDIS_URL"),
        ({"DEBUG": "perhaps"}, "check", "DEBUG"),
        ({"DEBUG": "false", "SECRET_KEY": ""}, "check", "SECRET_KEY"),
    ],
)
def test_bad_configuration_names_the_setting_without_a_traceback(
    env: dict[str, str], command: str, setting: str
) -> None:
    # Given a broken setting, when a management command starts
    result = run_manage(command, **env)

    # Then it stops with a message naming the setting, and no traceback
    assert result.returncode != 0
    assert setting in result.stderr
    assert "Traceback" not in result.stderr


def test_default_configuration_passes_the_system_checks() -> None:
    result = run_manage("check", SOUNDFONT_PATH="/usr/share/sounds/sf2/TimGM6mb.sf2")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_soundfont_check_rejects_a_file_that_is_not_a_soundfont(tmp_path: Path) -> None:
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"MThd this is a midi file, not a soundfont")
    result = run_manage("check", SOUNDFONT_PATH=str(fake))
    assert result.returncode != 0
    assert "not a SoundFont 2 file" in result.stderr

"""Storage failures leave no partial file behind and give a reason without server paths."""

import errno
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from tests.conftest import stored_files
from tests.factories import RevisionFactory
from tests.tracks.engine.test_arrangement import leading_silence_song
from tracks import services
from tracks.engine import load_arrangement
from tracks.models import RenderStatus
from tracks.services.storage import audio_store, revision_arrangement_load

pytestmark = pytest.mark.django_db


class _DiskFullError(OSError):
    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOSPC, "No space left on device", path)


def _save_half_then_fail(self, name, content, max_length=None):
    """What a full disk does: part of the file is written, then the write fails."""
    path = Path(self.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.read(100))
    raise _DiskFullError(str(path))


def test_a_full_disk_removes_the_partial_file(monkeypatch, isolated_media, tmp_path):
    # given
    source = tmp_path / "render.mp3"
    source.write_bytes(b"\xff\xfb" * 5000)
    monkeypatch.setattr(FileSystemStorage, "_save", _save_half_then_fail)

    # when
    with pytest.raises(services.TransientRenderError) as failed:
        audio_store(name="renders/1/abc.mp3", path=source)

    # then
    assert stored_files(isolated_media) == []
    assert str(isolated_media) not in str(failed.value)
    assert str(failed.value) == "could not store the rendered audio"


def test_a_render_that_cannot_be_stored_fails_plainly_after_its_retries(
    track, performer, monkeypatch, isolated_media
):
    # given: a render whose storage is full on every attempt
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    monkeypatch.setattr(FileSystemStorage, "_save", _save_half_then_fail)
    arrangement_files = stored_files(isolated_media)

    # when
    claimed = services.render_claim(render_id=render.pk, task_id="t")
    with pytest.raises(services.TransientRenderError) as failed:
        services.render_execute(render=claimed)
    services.render_fail(render_id=render.pk, reason=str(failed.value))

    # then: nothing but the arrangement is stored, and the reason names no path
    render.refresh_from_db()
    assert render.status == RenderStatus.FAILED
    assert render.error == "could not store the rendered audio"
    assert stored_files(isolated_media) == arrangement_files


def test_engine_reasons_reach_users_without_server_paths(track, performer, monkeypatch, caplog):
    # given: an engine failure whose message names files on this server
    from tracks.engine import RenderFailed
    from tracks.services import render_execution

    def fails(*args, **kwargs):
        raise RenderFailed(
            "SoundFont not found: /usr/share/sounds/sf2/Missing.sf2 (ffmpeg wrote /srv/cache/tmp/x.mp3)"
        )

    monkeypatch.setattr(render_execution, "render_variant", fails)
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})

    # when
    result = services.render_execute(render=services.render_claim(render_id=render.pk, task_id="t"))

    # then: the user reads the reason, the log keeps the detail
    assert result.status == RenderStatus.FAILED
    assert result.error == "SoundFont not found: a server file (ffmpeg wrote a server file)"
    assert "/usr/share/sounds/sf2/Missing.sf2" in caplog.text


def test_a_revision_is_played_with_the_lead_trim_its_analysis_recorded(isolated_media):
    # given: one file with three empty bars (6 s) before the music, stored as a revision analysed
    # before the engine cut leading bars (no trim recorded) and as one analysed since
    data = leading_silence_song(first_beat=12.0)
    analysed_now = load_arrangement(data).analysis
    analysed_before = {key: value for key, value in analysed_now.items() if key != "lead_trim_bars"}
    old = RevisionFactory(midi=ContentFile(data, name="old.mid"), analysis=analysed_before)
    new = RevisionFactory(midi=ContentFile(data, name="new.mid"), analysis=analysed_now)

    # when
    old_song = revision_arrangement_load(revision=old)
    new_song = revision_arrangement_load(revision=new)

    # then: the old revision keeps the seconds its stored bars and comments count in; the new one is cut
    assert (old_song.lead_trim_bars, old_song.analysis["start_s"]) == (0, 6.0)
    assert (new_song.lead_trim_bars, new_song.analysis["start_s"]) == (3, 0.0)
    assert new_song.analysis["bars"] == analysed_now["bars"] == 8

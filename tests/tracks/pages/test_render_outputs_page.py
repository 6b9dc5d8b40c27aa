"""The render panel offers the other outputs; a stems or MIDI render is a download, not a player."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.factories import RenderFactory
from tracks.models import Render, RenderStatus
from tracks.services.render_execution import render_storage_name

pytestmark = pytest.mark.django_db


def _done(render: Render) -> Render:
    name = default_storage.save(render_storage_name(render=render), ContentFile(b"bytes"))
    Render.objects.filter(pk=render.pk).update(status=RenderStatus.DONE, audio=name, duration_s=12.0)
    render.refresh_from_db()
    return render


def test_a_ready_mp3_offers_every_download_and_the_split_layout(client):
    render = _done(RenderFactory())
    html = client.get(f"/renders/{render.pk}/panel/").content.decode()
    assert "<audio" in html
    for label in ("MP3", "WAV", "Stems (ZIP)", "MIDI", "Click in left ear"):
        assert f">{label}</button>" in html
    assert f'action="/renders/{render.pk}/as/"' in html


def test_a_ready_stems_render_is_a_download(client):
    render = _done(RenderFactory(variant_settings={"format": "stems"}))
    html = client.get(f"/renders/{render.pk}/panel/").content.decode()
    assert "<audio" not in html
    assert "Download stems (ZIP)" in html

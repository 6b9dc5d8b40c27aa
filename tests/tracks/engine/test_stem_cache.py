"""Stem sets that travel between machines: packed on one, unpacked on another, used there."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from tests.tracks.engine.conftest import TIMGM
from tracks.demo import compose_song
from tracks.engine import VariantSettings, load_arrangement, prepare_stems
from tracks.engine.arrangement import Arrangement
from tracks.engine.stem_cache import stem_set_complete, stem_set_directory, stem_set_pack, stem_set_unpack


def built_set(tmp_path: Path) -> tuple[Arrangement, VariantSettings, Path]:
    arrangement = load_arrangement(compose_song(minutes=0.1, parts=3, seed=5))
    variant = VariantSettings.from_dict({"transpose": 1})
    stem_dir = tmp_path / "machine-a"
    assert prepare_stems(arrangement, variant, soundfont=TIMGM, stem_dir=stem_dir)
    return arrangement, variant, stem_set_directory(arrangement, variant, soundfont=TIMGM, stem_dir=stem_dir)


def test_a_packed_set_unpacks_on_another_machine_identical(tmp_path):
    # given: machine A built a stem set and packed it
    arrangement, variant, directory = built_set(tmp_path)
    archive = tmp_path / "set.tar"
    stem_set_pack(directory, archive)

    # when: machine B unpacks it where its own prepare_stems would have put it
    target = stem_set_directory(arrangement, variant, soundfont=TIMGM, stem_dir=tmp_path / "machine-b")
    assert stem_set_unpack(archive, target) is True

    # then: the same stems, sample for sample, and B's engine sees them as cached
    assert stem_set_complete(target)
    for stem in sorted(directory.glob("*.npy")):
        assert np.array_equal(np.load(stem), np.load(target / stem.name))
    assert prepare_stems(arrangement, variant, soundfont=TIMGM, stem_dir=tmp_path / "machine-b") is False


def test_an_incomplete_archive_leaves_nothing_behind(tmp_path):
    # given: an archive missing one stem its manifest names
    _, _, directory = built_set(tmp_path)
    archive = tmp_path / "broken.tar"
    with tarfile.open(archive, "w") as tar:
        missing = sorted(directory.glob("stem-*"))[0]
        for path in sorted(directory.iterdir()):
            if path != missing:
                tar.add(path, arcname=path.name)
    target = tmp_path / "machine-b" / "set"

    # when / then: refused, and no folder (partial or private) is left
    assert stem_set_unpack(archive, target) is False
    assert not target.exists()
    assert list((tmp_path / "machine-b").iterdir()) == []


def test_a_file_that_is_not_a_tar_is_refused(tmp_path):
    archive = tmp_path / "junk.tar"
    archive.write_bytes(b"not a tar at all")
    assert stem_set_unpack(archive, tmp_path / "b" / "set") is False

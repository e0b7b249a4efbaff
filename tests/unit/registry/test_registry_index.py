"""Registry index: what it holds, where it is stored, when it is reused and when it is rebuilt."""

from __future__ import annotations

import shutil
from pathlib import Path

import media_samples as ms
import numpy as np
import pytest

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.registry import (
    RegistryIndex,
    RegistrySource,
    build_index,
    index_folder,
    load_index,
    registry_digest,
    registry_source,
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A private copy of the test registry (demo + synthetic voice talent) that a test may edit."""
    target = tmp_path / "config"
    shutil.copytree(ms.demo_config(), target)
    return target


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir already holding the shared index, so tests start from a built state cheaply."""
    target = tmp_path / "data"
    shutil.copytree(ms.demo_index().path, target / "registry" / ms.demo_index().path.name)
    return target


def test_index_holds_every_registered_fingerprint() -> None:
    """Demo poster: 8 dihedral PDQ hashes and ORB descriptors for it and its mirror; one face per
    reference photo; one unit voice enrolment per talent with clips."""
    index = ms.demo_index()
    assert index.images.ips == ["blue-meridian"]
    assert index.images.hashes.shape == (8, 32)
    assert index.images.plain.descriptors.shape[1] == 32
    assert len(index.images.plain.descriptors) > 500
    assert len(index.images.mirrored.descriptors) > 500
    assert index.faces.talent == ["eileen-collins"]
    assert index.faces.embeddings.shape == (1, 128)
    assert index.voices.talent == ["voice-a"]
    assert float(np.linalg.norm(index.voices.enrolments[0])) == pytest.approx(1.0, abs=1e-5)


def test_index_lives_under_the_data_dir_by_digest() -> None:
    index = ms.demo_index()
    digest = registry_digest(registry_source(ms.demo_config()))
    assert index.digest == digest
    assert index.path == index_folder(ms.demo_config().parent / "data", digest)
    assert sorted(p.name for p in index.path.iterdir()) == ["faces.npz", "images.npz", "manifest.json", "voices.npz"]


def test_round_trip_through_files() -> None:
    """What is read back searches the same: same hashes, descriptors, embeddings."""
    index = ms.demo_index()
    again = RegistryIndex.read(index.path)
    assert again.digest == index.digest
    assert np.array_equal(again.images.hashes, index.images.hashes)
    assert np.array_equal(again.images.mirrored.descriptors, index.images.mirrored.descriptors)
    assert np.array_equal(again.faces.embeddings, index.faces.embeddings)
    assert again.images.near_hashes(index.images.hashes[3].tobytes(), 0)[0].ip == "blue-meridian"


def test_unchanged_registry_reuses_the_stored_index(
    config: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same YAML and files → load_index reads the stored index and builds nothing."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt an unchanged registry")

    monkeypatch.setattr("gateway.registry.build.build_index", refuse)
    index = load_index(data_dir, config)
    assert index.digest == ms.demo_index().digest


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ("poster bytes", lambda c: _append_png_chunk(c / "registry/ip/blue-meridian/poster.png")),
        ("yaml edit", lambda c: _append(c / "registry/ip/blue-meridian/ip.yaml", "terms: [meridian]\n")),
        ("talent removed", lambda c: shutil.rmtree(c / "registry/talent/voice-a")),
    ],
)
def test_changed_registry_is_rebuilt_and_old_index_removed(config: Path, data_dir: Path, change: str,
                                                           what: object) -> None:
    """Any change to a media file or YAML changes the digest: a new index is built, the old one goes."""
    what(config)  # type: ignore[operator]
    index = load_index(data_dir, config)
    assert index.digest != ms.demo_index().digest
    assert [p.name for p in (data_dir / "registry").iterdir()] == [index.path.name]
    if change == "talent removed":
        assert index.voices.talent == []


def test_damaged_index_is_rebuilt(config: Path, data_dir: Path) -> None:
    """A stored index with a missing file is not trusted: it is rebuilt, not half-loaded."""
    folder = index_folder(data_dir, ms.demo_index().digest)
    (folder / "images.npz").unlink()
    index = load_index(data_dir, config)
    assert index.images.asset_count == 1
    assert (folder / "images.npz").is_file()


def test_build_accepts_a_loaded_config_or_a_source(tmp_path: Path, config: Path) -> None:
    loaded = load_config(config)
    source = RegistrySource(directory=loaded.directory, registry=loaded.config.registry)
    assert registry_digest(registry_source(loaded)) == registry_digest(source) == ms.demo_index().digest


@pytest.mark.parametrize(
    ("field", "file_bytes", "message"),
    [
        ("photos", ms.png_bytes(ms.synthetic_poster(1)), "no face found"),
        ("photos", b"\x89PNG\r\n\x1a\nbroken", "reference photo cannot be used"),
        ("voices", ms.wav_bytes(np.zeros(3 * ms.SAMPLE_RATE, np.float32)), "less than 1 s of speech"),
        ("voices", b"RIFF....WAVEbroken", "reference voice clip cannot be used"),
    ],
)
def test_unusable_reference_media_is_a_config_error(tmp_path: Path, config: Path, field: str, file_bytes: bytes,
                                                     message: str) -> None:
    """A talent whose photo shows no face or whose clip holds no speech would go unprotected: the
    build fails with the file's path and what to do."""
    folder = config / "registry" / "talent" / "broken"
    folder.mkdir()
    name = "ref.png" if field == "photos" else "ref.wav"
    (folder / name).write_bytes(file_bytes)
    (folder / "talent.yaml").write_text(f"id: broken\nname: Broken Ref\n{field}: [{name}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_index(config, tmp_path / "data")
    assert str(folder / name) in str(caught.value)
    assert message in str(caught.value)


def test_unwritable_data_dir_is_a_config_error(tmp_path: Path, config: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(ConfigError, match="cannot write the registry index"):
        build_index(config, blocker)


def test_registry_without_media_builds_an_empty_index(tmp_path: Path, config: Path) -> None:
    shutil.rmtree(config / "registry" / "talent" / "voice-a")
    (config / "registry" / "ip" / "blue-meridian" / "ip.yaml").write_text("id: blue-meridian\ntitle: Blue Meridian\n")
    talent = config / "registry" / "talent" / "eileen-collins" / "talent.yaml"
    talent.write_text("id: eileen-collins\nname: Eileen Collins\n")
    index = build_index(config, tmp_path / "data")
    assert (index.images.asset_count, len(index.faces.talent), len(index.voices.talent)) == (0, 0, 0)
    assert index.images.near_hashes(bytes(32), 50) == []


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _append_png_chunk(path: Path) -> None:
    """Same picture, different bytes (a text chunk)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "re-saved")
    Image.open(path).save(path, pnginfo=info)


@pytest.mark.parametrize(
    "module",
    ["gateway.registry", "gateway.detect.image", "gateway.detect.face", "gateway.detect.voice",
     "gateway.detect.media_image", "gateway.detect.media_face", "gateway.detect.media_voice",
     "gateway.detect.media_guard", "gateway.registry.entry"],
)
def test_public_names_exist(module: str) -> None:
    """Every name in `__all__` is defined (kept honest, as httpx does)."""
    imported = __import__(module, fromlist=["__all__"])
    assert [name for name in imported.__all__ if not hasattr(imported, name)] == []


def test_build_logs_counts_and_ids_never_names_or_files(tmp_path: Path, config: Path) -> None:
    """The build's log events carry a digest and counts: no talent names, titles or file names."""
    from structlog.testing import capture_logs

    with capture_logs() as events:
        build_index(config, tmp_path / "data")
    text = repr(events)
    assert "registry_index_built" in text
    for secret in ("Eileen Collins", "Blue Meridian", "reference.png", "poster.png", "clip0.wav"):
        assert secret not in text

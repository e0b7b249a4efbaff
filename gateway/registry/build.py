"""Compile the registry into a `RegistryIndex` in the data dir, and reuse it while nothing changed.

    build_index(config_dir | LoadedConfig | RegistrySource, data_dir) -> RegistryIndex   always computes
    load_index(data_dir, config_dir | LoadedConfig | RegistrySource) -> RegistryIndex    reuses or rebuilds

The index folder is `<data-dir>/registry/index-<digest>/`, where the digest covers the YAML and every
referenced file (see `source.registry_digest`): edit a talent's photos and the next `load_index`
rebuilds. A build writes into a temporary folder and renames it into place, so a reader never sees
half an index and two processes building at once both end up with one complete copy. Older index
folders are removed after a successful build.

A reference file that cannot be used (unreadable, no face in a talent photo, no speech in a voice
clip) is a ConfigError naming the file: a talent silently missing from the index would go unprotected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import structlog
from PIL import Image, ImageOps

from gateway.config import LoadedConfig
from gateway.config.models import IntellectualProperty, Talent
from gateway.content import ContentLimits, MediaItem, decode_audio, decode_image_frames
from gateway.content.inputs import MediaKind
from gateway.detect.media_face import FaceModel
from gateway.detect.media_guard import guarded
from gateway.detect.media_image import Features, dihedral_hashes, local_features
from gateway.detect.media_voice import SpeakerEncoder, preprocess
from gateway.errors import ConfigError, GreenroomError

from .index import FaceBank, ImageBank, RegistryIndex, VoiceBank, _Descriptors
from .layout import INDEX_FOLDER, index_folder
from .source import RegistrySource, registry_digest, registry_source

__all__ = [
    "INDEX_FOLDER",
    "MIN_ENROLMENT_SPEECH_SECONDS",
    "build_index",
    "check_talent_media",
    "index_folder",
    "load_index",
]

MIN_ENROLMENT_SPEECH_SECONDS = 1.0
_LIMITS = ContentLimits()

log = structlog.get_logger(__name__)

Source = str | Path | LoadedConfig | RegistrySource


def load_index(data_dir: str | Path, registry: Source) -> RegistryIndex:
    """The index of the registry as it is now: the stored one if its digest matches, else a new build."""
    source = registry_source(registry)
    digest = registry_digest(source)
    folder = index_folder(data_dir, digest)
    if folder.is_dir():
        try:
            index = RegistryIndex.read(folder)
        except ConfigError:
            log.warning("registry_index_unreadable", folder=str(folder))
        else:
            if index.digest == digest:
                return index
    return build_index(source, data_dir, digest=digest)


def build_index(registry: Source, data_dir: str | Path, *, digest: str | None = None) -> RegistryIndex:
    """Fingerprint every registered image, face and voice and store the index under `data_dir`."""
    source = registry_source(registry)
    digest = digest or registry_digest(source)
    _writable(Path(data_dir) / INDEX_FOLDER)
    index = RegistryIndex(
        digest=digest,
        images=_image_bank(source),
        faces=_face_bank(source),
        voices=_voice_bank(source),
    )
    folder = _store(index, Path(data_dir))
    log.info(
        "registry_index_built",
        digest=digest[:16],
        images=index.images.asset_count,
        faces=len(index.faces.talent),
        voices=len(index.voices.talent),
    )
    return RegistryIndex(index.digest, index.images, index.faces, index.voices, path=folder)


# --- images ------------------------------------------------------------------------------------------


def _image_bank(source: RegistrySource) -> ImageBank:
    ips: list[str] = []
    sizes: list[tuple[int, int]] = []
    hashes: list[bytes] = []
    owners: list[int] = []
    plain: list[Features] = []
    mirrored: list[Features] = []
    for work in source.registry.ip:
        for number, path in enumerate(source.image_paths(work)):
            asset = len(ips)
            image = _read_image(path, work, number)
            with guarded("image fingerprint", _where(work.id, "images", number)):
                variants, quality = dihedral_hashes(image)
                features = local_features(image, query=False)
                mirror = local_features(ImageOps.mirror(image), query=False)
            if quality > 0:
                hashes += variants
                owners += [asset] * len(variants)
            else:
                log.warning("registry_image_flat", ip=work.id, image=number)
            ips.append(work.id)
            sizes.append(features.size)
            plain.append(features)
            mirrored.append(mirror)
    return ImageBank(
        ips,
        np.array(sizes, np.float32).reshape(-1, 2),
        np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, 32),
        np.array(owners, np.int32),
        _Descriptors.stacked(plain),
        _Descriptors.stacked(mirrored),
    )


def _read_image(path: Path, work: IntellectualProperty, number: int) -> Image.Image:
    item = _media_item(path, "image", _where(work.id, "images", number))
    try:
        return decode_image_frames(item, _LIMITS)[0]
    except GreenroomError as exc:
        raise ConfigError(f"{path}: IP image cannot be used ({exc})") from exc


# --- faces -------------------------------------------------------------------------------------------


def _face_bank(source: RegistrySource) -> FaceBank:
    if not any(t.photos for t in source.registry.talent):
        return FaceBank([], np.zeros((0, 128), np.float32))
    model = FaceModel()
    owners: list[str] = []
    embeddings: list[np.ndarray] = []
    for talent in source.registry.talent:
        for number, path in enumerate(source.photo_paths(talent)):
            embeddings.append(_reference_face(model, path, talent, number))
            owners.append(talent.id)
    return FaceBank(owners, np.stack(embeddings) if embeddings else np.zeros((0, 128), np.float32))


def _reference_face(model: FaceModel, path: Path, talent: Talent, number: int) -> np.ndarray:
    location = _where(talent.id, "photos", number)
    item = _media_item(path, "image", location)
    try:
        image = decode_image_frames(item, _LIMITS)[0]
        with guarded("face enrolment", location):
            search = model.find(image)
            embedding = model.embed(np.asarray(search.image), search.boxes[0]) if search.boxes else None
    except GreenroomError as exc:
        raise ConfigError(f"{path}: reference photo cannot be used ({exc})") from exc
    if embedding is None:
        raise ConfigError(f"{path}: no face found in this reference photo; use a clear, frontal photo")
    return embedding


# --- voices ------------------------------------------------------------------------------------------


def _voice_bank(source: RegistrySource) -> VoiceBank:
    if not any(t.voices for t in source.registry.talent):
        return VoiceBank([], np.zeros((0, 256), np.float32))
    encoder = SpeakerEncoder()
    owners: list[str] = []
    enrolments: list[np.ndarray] = []
    for talent in source.registry.talent:
        clips = [_clip_embedding(encoder, path, talent, n) for n, path in enumerate(source.voice_paths(talent))]
        if clips:
            mean = np.mean(clips, axis=0)
            enrolments.append((mean / np.linalg.norm(mean)).astype(np.float32))
            owners.append(talent.id)
    return VoiceBank(owners, np.stack(enrolments) if enrolments else np.zeros((0, 256), np.float32))


def _clip_embedding(encoder: SpeakerEncoder, path: Path, talent: Talent, number: int) -> np.ndarray:
    location = _where(talent.id, "voices", number)
    try:
        pcm = decode_audio(_media_item(path, "audio", location), _LIMITS)
        with guarded("voice enrolment", location):
            speech = preprocess(pcm)
            embedding = encoder.embed(speech.samples) if speech.seconds >= MIN_ENROLMENT_SPEECH_SECONDS else None
    except GreenroomError as exc:
        raise ConfigError(f"{path}: reference voice clip cannot be used ({exc})") from exc
    if embedding is None:
        raise ConfigError(f"{path}: less than {MIN_ENROLMENT_SPEECH_SECONDS:g} s of speech in this voice clip")
    return embedding


def check_talent_media(talent: Talent, photos: list[Path], voices: list[Path]) -> None:
    """Raise ConfigError unless every photo shows a face and every clip holds speech (before registering)."""
    if photos:
        model = FaceModel()
        for number, path in enumerate(photos):
            _reference_face(model, path, talent, number)
    if voices:
        encoder = SpeakerEncoder()
        for number, path in enumerate(voices):
            _clip_embedding(encoder, path, talent, number)


# --- storage -----------------------------------------------------------------------------------------


def _media_item(path: Path, kind: MediaKind, location: str) -> MediaItem:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read registry file ({exc.strerror or type(exc).__name__})") from exc
    return MediaItem(data=data, kind=kind, sniffed_type="", declared_type="", location=location, name=path.name)


def _where(entity: str, field: str, number: int) -> str:
    return f"registry.{entity}.{field}[{number}]"


def _writable(parent: Path) -> None:
    """Fail before minutes of fingerprinting, not after, when the index cannot be stored."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise ConfigError(f"{parent}: cannot write the registry index ({exc.strerror or type(exc).__name__})") from exc


def _store(index: RegistryIndex, data_dir: Path) -> Path:
    """Write into a temporary folder, rename into place, remove older indexes."""
    final = index_folder(data_dir, index.digest)
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=parent))
        index.save(staging)
        _publish(staging, final, index.digest)
        _remove_stale(parent, keep=final)
    except OSError as exc:
        raise ConfigError(f"{parent}: cannot write the registry index ({exc.strerror or type(exc).__name__})") from exc
    return final


def _publish(staging: Path, final: Path, digest: str) -> None:
    """Rename the new index into place; a complete index already there (another process) wins,
    a damaged one is replaced."""
    try:
        os.rename(staging, final)
        return
    except OSError:
        if not final.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
            raise
    if _complete(final, digest):
        shutil.rmtree(staging, ignore_errors=True)
        return
    damaged = Path(tempfile.mkdtemp(prefix=".damaged-", dir=final.parent))
    os.rename(final, damaged / final.name)
    os.rename(staging, final)
    shutil.rmtree(damaged, ignore_errors=True)


def _complete(folder: Path, digest: str) -> bool:
    try:
        return RegistryIndex.read(folder).digest == digest
    except ConfigError:
        return False


def _remove_stale(parent: Path, keep: Path) -> None:
    for folder in [*parent.glob("index-*"), *parent.glob(".damaged-*")]:
        if folder != keep and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

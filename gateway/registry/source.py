"""Where the registry's files are, and a digest that changes whenever any of them does.

The registry lives in the configuration directory:

    registry/talent/<id>/talent.yaml   + reference photos and voice clips beside it
    registry/ip/<id>/ip.yaml           + images and scripts beside it

`RegistrySource` pairs the validated `Registry` with that directory, so file names in the YAML
(relative to the YAML file) resolve to paths.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.config import LoadedConfig, load_config
from gateway.config.models import IntellectualProperty, Registry, Talent
from gateway.errors import ConfigError

__all__ = ["INDEX_FORMAT", "RegistrySource", "registry_digest", "registry_source"]

INDEX_FORMAT = "greenroom-media-index/1 pdq512-dihedral orb1000-fast10 dlib-hog-5pt-resnet ge2e-numpy"
"""Part of the digest: changing how the index is computed forces a rebuild."""


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """A validated registry and the configuration directory its files live in."""

    directory: Path
    registry: Registry

    def talent_folder(self, talent: Talent) -> Path:
        return self.directory / "registry" / "talent" / talent.id

    def ip_folder(self, work: IntellectualProperty) -> Path:
        return self.directory / "registry" / "ip" / work.id

    def photo_paths(self, talent: Talent) -> list[Path]:
        return [self.talent_folder(talent) / name for name in talent.photos]

    def voice_paths(self, talent: Talent) -> list[Path]:
        return [self.talent_folder(talent) / name for name in talent.voices]

    def image_paths(self, work: IntellectualProperty) -> list[Path]:
        return [self.ip_folder(work) / name for name in work.images]

    def media_files(self) -> Iterator[Path]:
        """Every file the media index is computed from."""
        for talent in self.registry.talent:
            yield from self.photo_paths(talent)
            yield from self.voice_paths(talent)
        for work in self.registry.ip:
            yield from self.image_paths(work)


def registry_source(value: str | Path | LoadedConfig | RegistrySource) -> RegistrySource:
    """Accept a configuration directory, a loaded configuration or a source."""
    if isinstance(value, RegistrySource):
        return value
    loaded = value if isinstance(value, LoadedConfig) else load_config(value)
    return RegistrySource(directory=loaded.directory, registry=loaded.config.registry)


def registry_digest(source: RegistrySource) -> str:
    """sha256 over the index format, the registry's YAML content and every media file's bytes."""
    digest = hashlib.sha256()
    digest.update(INDEX_FORMAT.encode())
    digest.update(source.registry.model_dump_json().encode())
    for path in source.media_files():
        digest.update(str(path.relative_to(source.directory)).encode() + b"\0")
        digest.update(_file_digest(path))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read registry file ({exc.strerror or type(exc).__name__})") from exc

"""Adding and removing registry entries for people who do not edit YAML.

    add_talent(config_dir, talent, photos, voices)   writes registry/talent/<id>/talent.yaml + copies files
    add_ip(config_dir, work, images, scripts)         writes registry/ip/<id>/ip.yaml + copies files
    remove_entry(config_dir, id) -> "talent" | "ip"  removes the entry's folder

Talent photos must show a face and voice clips must hold speech, checked before anything is written.
Each change is validated with `load_config` before it counts: if the configuration no longer
loads (an id taken, a production still citing a removed entry), the change is rolled back and the
ConfigError lists the problems.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml

from gateway.config import load_config
from gateway.config.models import ID_PATTERN, IntellectualProperty, Talent
from gateway.errors import ConfigError

__all__ = ["EntryKind", "add_ip", "add_talent", "remove_entry"]

EntryKind = Literal["talent", "ip"]
_ID = re.compile(ID_PATTERN)
_HEADER = "# Written by `greenroom registry {command}`; edit freely, paths are relative to this file.\n"


def add_talent(config_dir: Path, talent: Talent, photos: Sequence[Path], voices: Sequence[Path]) -> Path:
    """Create a talent entry with copies of its reference photos and voice clips; return its YAML file.

    Every photo must show a face and every clip must hold speech (checked before anything is written).
    """
    from .build import check_talent_media  # loads the face and voice models: only when adding talent

    check_talent_media(talent, list(photos), list(voices))
    folder = _new_folder(config_dir, "talent", talent.id)
    try:
        photo_names = _copy_files(photos, folder)
        voice_names = _copy_files(voices, folder, taken=set(photo_names))
        entry = talent.model_copy(update={"photos": photo_names, "voices": voice_names})
        target = _write_yaml(folder / "talent.yaml", entry.model_dump(exclude_defaults=True), "add-talent")
        load_config(config_dir)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target


def add_ip(config_dir: Path, work: IntellectualProperty, images: Sequence[Path], scripts: Sequence[Path]) -> Path:
    """Create an IP entry with copies of its images and scripts; return its YAML file."""
    folder = _new_folder(config_dir, "ip", work.id)
    try:
        image_names = _copy_files(images, folder)
        script_names = _copy_files(scripts, folder, taken=set(image_names))
        entry = work.model_copy(update={"images": image_names, "scripts": script_names})
        target = _write_yaml(folder / "ip.yaml", entry.model_dump(exclude_defaults=True), "add-ip")
        load_config(config_dir)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target


def remove_entry(config_dir: Path, entry_id: str) -> EntryKind:
    """Remove the talent or IP entry `entry_id` (folder and files); roll back if the config then fails."""
    _check_id(entry_id)
    kind, folder = _existing_folder(config_dir, entry_id)
    with tempfile.TemporaryDirectory(prefix=".removed-", dir=folder.parent) as holding:
        parked = Path(holding) / folder.name
        _move(folder, parked)
        try:
            load_config(config_dir)
        except BaseException:
            _move(parked, folder)
            raise
    return kind


def _check_id(entry_id: str) -> None:
    if not _ID.fullmatch(entry_id):
        raise ConfigError(f"id {entry_id!r}: use lower-case letters, digits, '.', '_' or '-' (up to 63)")


def _new_folder(config_dir: Path, kind: EntryKind, entry_id: str) -> Path:
    _check_id(entry_id)
    if not Path(config_dir).is_dir():
        raise ConfigError(f"{config_dir}: not a directory; pass the configuration directory")
    for other in ("talent", "ip"):
        if (Path(config_dir) / "registry" / other / entry_id).exists():
            raise ConfigError(f"id {entry_id!r} is already registered as {other}; remove it first or pick another")
    folder = Path(config_dir) / "registry" / kind / entry_id
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create ({exc.strerror or type(exc).__name__})") from exc
    return folder


def _existing_folder(config_dir: Path, entry_id: str) -> tuple[EntryKind, Path]:
    for kind, name in (("talent", "talent.yaml"), ("ip", "ip.yaml")):
        folder = Path(config_dir) / "registry" / kind / entry_id
        if (folder / name).is_file():
            return kind, folder  # type: ignore[return-value]
    raise ConfigError(f"no talent or IP with id {entry_id!r} in {config_dir}; see `greenroom registry list`")


def _copy_files(sources: Sequence[Path], folder: Path, taken: set[str] | None = None) -> list[str]:
    """Copy each file into `folder` under its own name (numbered when names collide)."""
    used = set(taken or ())
    names = []
    for source in sources:
        name = _free_name(Path(source).name, used)
        try:
            shutil.copyfile(source, folder / name)
        except OSError as exc:
            raise ConfigError(f"{source}: cannot copy ({exc.strerror or type(exc).__name__})") from exc
        used.add(name)
        names.append(name)
    return names


def _free_name(name: str, used: set[str]) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, number = name, 2
    while candidate in used or candidate in ("talent.yaml", "ip.yaml"):
        candidate = f"{stem}-{number}{suffix}"
        number += 1
    return candidate


def _write_yaml(path: Path, data: dict[str, object], command: str) -> Path:
    text = _HEADER.format(command=command) + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from exc
    return path


def _move(source: Path, target: Path) -> None:
    try:
        source.rename(target)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot move ({exc.strerror or type(exc).__name__})") from exc

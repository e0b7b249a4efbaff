"""Load a configuration directory into a validated `GatewayConfig`.

Layout (see config/example/ for every option, commented):

    gateway.yaml                      settings (optional)
    users.yaml                        users: [...]
    productions/<id>.yaml             one production per file
    tools/<id>.yaml                   tool definitions that add to or replace the packaged catalog
    registry/talent/<id>/talent.yaml  registered talent
    registry/ip/<id>/ip.yaml          registered IP

Every problem is reported as `file:line: path: what is wrong and how to fix it`, all at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

from .models import (
    GatewayConfig,
    GatewaySettings,
    IntellectualProperty,
    Locator,
    Production,
    Registry,
    Talent,
    Tool,
    User,
    cross_reference_problems,
)

__all__ = ["CATALOG_DIR", "LoadedConfig", "load_config", "load_tool_catalog"]

CATALOG_DIR = Path(__file__).resolve().parent.parent / "tools" / "definitions"

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: GatewayConfig
    directory: Path
    digest: str
    """sha256 over every file read: changes whenever the configuration does."""


@dataclass(frozen=True, slots=True)
class _Document:
    file: Path
    data: Any
    lines: dict[Path_, int]

    def line(self, path: Iterable[str | int]) -> int:
        """Line of the deepest node of `path` present in the document (1-based)."""
        parts = tuple(path)
        for end in range(len(parts), -1, -1):
            if parts[:end] in self.lines:
                return self.lines[parts[:end]]
        return 1


def load_config(directory: str | Path) -> LoadedConfig:
    """Read and validate a configuration directory; raise ConfigError listing every problem."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory; pass the configuration directory (like config/demo)")
    problems: list[str] = []
    files: list[Path] = []
    settings_doc = _optional_document(root / "gateway.yaml", problems, files)
    users_doc = _optional_document(root / "users.yaml", problems, files)

    settings = _validate(GatewaySettings, settings_doc, (), problems) if settings_doc else GatewaySettings()
    users = _validate_list(User, users_doc, "users", problems) if users_doc else []
    productions = _load_entities(Production, sorted((root / "productions").glob("*.yaml")), problems, files)
    tools = _merge_tools(load_tool_catalog(problems, files),
                         _load_entities(Tool, sorted((root / "tools").glob("*.yaml")), problems, files))
    talent = _load_entities(Talent, sorted((root / "registry" / "talent").glob("*/talent.yaml")), problems, files)
    ip = _load_entities(
        IntellectualProperty, sorted((root / "registry" / "ip").glob("*/ip.yaml")), problems, files
    )
    problems += _missing_registry_files(talent, ip)
    if problems:
        raise ConfigError(problems)

    registry = Registry(talent=[t for t, _ in talent], ip=[i for i, _ in ip])
    draft = GatewayConfig.model_construct(
        settings=settings,
        users=users,
        productions=[p for p, _ in productions],
        tools=[t for t, _ in tools],
        registry=registry,
    )
    documents = _locators(settings_doc, users_doc, productions, tools, talent, ip)
    for locator, message in cross_reference_problems(draft):
        problems.append(_cross_problem(documents, locator, message))
    if problems:
        raise ConfigError(problems)
    config = GatewayConfig(
        settings=settings, users=users, productions=draft.productions, tools=draft.tools, registry=registry
    )
    return LoadedConfig(config=config, directory=root.resolve(), digest=_digest(files))


def load_tool_catalog(problems: list[str] | None = None, files: list[Path] | None = None) -> list[Tool]:
    """The tool catalog shipped with the package."""
    own_problems: list[str] = [] if problems is None else problems
    tools = _load_entities(Tool, sorted(CATALOG_DIR.glob("*.yaml")), own_problems, files)
    if problems is None and own_problems:
        raise ConfigError(own_problems)
    return [t for t, _ in tools]


# --- documents --------------------------------------------------------------------------------------


def _read_document(file: Path) -> _Document:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}:1: cannot read the file: {exc}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        duplicates: list[str] = []
        if node is not None:
            _walk(node, (), lines, duplicates, file)
        if duplicates:
            raise ConfigError(duplicates)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        what = getattr(exc, "problem", None) or type(exc).__name__  # never str(exc): it quotes the line
        raise ConfigError(f"{file}:{line}: not valid YAML: {what}; check indentation and quoting") from exc
    finally:
        loader.dispose()
    return _Document(file=file, data=data, lines=lines)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], dups: list[str], file: Path) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                dups.append(f"{file}:{line}: {_dotted((*path, key))}: key appears twice (first on line "
                            f"{seen[key]}); keep one")
            seen[key] = line
            _walk(value_node, (*path, key), lines, dups, file)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, dups, file)


def _optional_document(file: Path, problems: list[str], files: list[Path]) -> _Document | None:
    if not file.exists():
        return None
    files.append(file)
    try:
        return _read_document(file)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


# --- validation -----------------------------------------------------------------------------------


def _validate[M: BaseModel](model: type[M], doc: _Document, base: Path_, problems: list[str]) -> M:
    data = doc.data if doc.data is not None else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, doc, base))
        return model.model_construct()


def _validate_list[M: BaseModel](model: type[M], doc: _Document, key: str, problems: list[str]) -> list[M]:
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict) or set(data) - {key}:
        problems.append(f"{doc.file}:1: expected a mapping with a single key `{key}:` holding a list")
        return []
    items = data.get(key) or []
    if not isinstance(items, list):
        problems.append(f"{doc.file}:{doc.line((key,))}: {key}: expected a list")
        return []
    out: list[M] = []
    for index, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            problems.extend(_format_errors(exc, doc, (key, index)))
    return out


def _load_entities[M: BaseModel](
    model: type[M], files: list[Path], problems: list[str], read: list[Path] | None
) -> list[tuple[M, _Document]]:
    out: list[tuple[M, _Document]] = []
    for file in files:
        if read is not None:
            read.append(file)
        try:
            doc = _read_document(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        before = len(problems)
        entity = _validate(model, doc, (), problems)
        if len(problems) > before:
            continue
        expected = file.parent.name if file.stem in ("talent", "ip") else file.stem
        if getattr(entity, "id", expected) != expected:
            problems.append(f"{file}:{doc.line(('id',))}: id: {getattr(entity, 'id', '')!r} does not match "
                            f"its file name; name the file after the id ({expected!r})")
            continue
        out.append((entity, doc))
    return out


def _merge_tools(packaged: list[Tool], local: list[tuple[Tool, _Document]]) -> list[tuple[Tool, _Document | None]]:
    merged: dict[str, tuple[Tool, _Document | None]] = {t.id: (t, None) for t in packaged}
    for tool, doc in local:
        merged[tool.id] = (tool, doc)
    return list(merged.values())


def _missing_registry_files(
    talent: list[tuple[Talent, _Document]], ip: list[tuple[IntellectualProperty, _Document]]
) -> list[str]:
    problems = []
    entries: list[tuple[_Document, str, list[str]]] = []
    for person, doc in talent:
        entries += [(doc, "photos", person.photos), (doc, "voices", person.voices)]
    for work, doc in ip:
        entries += [(doc, "images", work.images), (doc, "scripts", work.scripts)]
    for doc, field, names in entries:
        for index, name in enumerate(names):
            target = (doc.file.parent / name).resolve()
            if not target.is_relative_to(doc.file.parent.resolve()):
                problems.append(f"{doc.file}:{doc.line((field, index))}: {field}[{index}]: must stay inside "
                                f"{doc.file.parent}")
            elif not target.is_file():
                problems.append(f"{doc.file}:{doc.line((field, index))}: {field}[{index}]: file {name!r} "
                                "does not exist; add it next to the YAML file or remove the entry")
    return problems


_HINTS = {
    "extra_forbidden": "unknown key; remove it or fix its spelling",
    "missing": "required; add it",
}


def _format_errors(exc: ValidationError, doc: _Document, base: Path_) -> Iterator[str]:
    for error in exc.errors(include_input=False, include_url=False):
        loc = (*base, *error["loc"])
        message = _HINTS.get(error["type"], error["msg"]).removeprefix("Value error, ")
        yield f"{doc.file}:{doc.line(loc)}: {_dotted(loc) or '(top level)'}: {message}"


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- cross references -------------------------------------------------------------------------------


def _locators(
    settings: _Document | None,
    users: _Document | None,
    productions: list[tuple[Production, _Document]],
    tools: list[tuple[Tool, _Document | None]],
    talent: list[tuple[Talent, _Document]],
    ip: list[tuple[IntellectualProperty, _Document]],
) -> dict[tuple[str, str], tuple[_Document | None, Path_]]:
    out: dict[tuple[str, str], tuple[_Document | None, Path_]] = {("settings", "gateway"): (settings, ())}
    if users is not None and isinstance(users.data, dict):
        for index, item in enumerate(users.data.get("users") or []):
            if isinstance(item, dict) and "name" in item:
                out[("user", str(item["name"]))] = (users, ("users", index))
    for kind, entries in (("production", productions), ("tool", tools), ("talent", talent), ("ip", ip)):
        for entity, doc in entries:
            out.setdefault((kind, entity.id), (doc, ()))
    return out


def _cross_problem(
    documents: dict[tuple[str, str], tuple[_Document | None, Path_]], locator: Locator, message: str
) -> str:
    kind, entity, path = locator
    doc, base = documents.get((kind, entity), (None, ()))
    full = (*base, *path)
    if doc is None:
        return f"<{kind} {entity}>: {_dotted(path) or kind}: {message}"
    return f"{doc.file}:{doc.line(full)}: {_dotted(full) or kind}: {message}"


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in sorted(set(files)):
        digest.update(str(file).encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()

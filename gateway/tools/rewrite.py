"""Retention, training and tenant rewrites, declared per tool in the catalog.

Pure functions over a parsed JSON body, a query list and a header list. Each change is recorded
(`RewriteRecord`: rule, target, kind of change; never the values). A forced value is compared by
type as well as value, so `"store": "false"` or `"store": 0` are replaced by `false`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.models import HeaderRemove, HeaderSet, JsonRemove, JsonSet, QuerySet, Rewrite
from gateway.decision import RewriteRecord

__all__ = ["RewriteResult", "apply_rewrites", "pin_tenant"]

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RewriteResult:
    body: Any
    body_changed: bool
    query: Pairs
    query_changed: bool
    headers: Pairs
    headers_changed: bool
    records: tuple[RewriteRecord, ...]


def apply_rewrites(rewrites: Sequence[Rewrite], body: Any, query: Pairs, headers: Pairs) -> RewriteResult:
    """Apply every rewrite in order; `body` is a parsed JSON value (or None for non-JSON bodies)."""
    records: list[RewriteRecord] = []
    body_changed = query_changed = headers_changed = False
    for rewrite in rewrites:
        if isinstance(rewrite, JsonSet):
            changed = _json_set(body, rewrite, records)
            body_changed |= changed
        elif isinstance(rewrite, JsonRemove):
            body_changed |= _json_remove(body, rewrite, records)
        elif isinstance(rewrite, QuerySet):
            query, changed = _query_set(query, rewrite, records)
            query_changed |= changed
        elif isinstance(rewrite, HeaderSet):
            headers, changed = _header_set(headers, rewrite.name, rewrite.value, rewrite.rule, records)
            headers_changed |= changed
        elif isinstance(rewrite, HeaderRemove):
            headers, changed = _header_remove(headers, rewrite, records)
            headers_changed |= changed
    return RewriteResult(body, body_changed, query, query_changed, headers, headers_changed, tuple(records))


def pin_tenant(headers: Pairs, header: str, tenant: str) -> tuple[Pairs, RewriteRecord | None]:
    """Force the tenant header to the production's tenant; a conflicting client value is replaced."""
    records: list[RewriteRecord] = []
    pinned, _ = _header_set(headers, header, tenant, "tenant.pinned", records)
    return pinned, (records[0] if records else None)


# --- JSON -----------------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _split(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _json_set(body: Any, rewrite: JsonSet, records: list[RewriteRecord]) -> bool:
    parts = _split(rewrite.path)
    changed = False
    for container, key, where in _locate(body, parts, ""):
        if not _same(container[key], rewrite.value):
            container[key] = _copy(rewrite.value)
            records.append(RewriteRecord(rewrite.rule, "body." + where, "set"))
            changed = True
    if rewrite.when == "always" and not any(p in ("*", "**") for p in parts) and isinstance(body, dict):
        changed |= _json_add(body, parts, rewrite, records)
    return changed


def _json_add(body: dict[str, Any], parts: list[str], rewrite: JsonSet, records: list[RewriteRecord]) -> bool:
    node: Any = body
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            node[part] = child = {}
            records.append(RewriteRecord(rewrite.rule, "body." + ".".join(parts[:-1]), "set"))
        node = child
    if parts[-1] in node:
        return False
    node[parts[-1]] = _copy(rewrite.value)
    records.append(RewriteRecord(rewrite.rule, "body." + ".".join(parts), "added"))
    return True


def _json_remove(body: Any, rewrite: JsonRemove, records: list[RewriteRecord]) -> bool:
    found = list(_locate(body, _split(rewrite.path), ""))
    for container, key, where in reversed(found):
        del container[key]
        records.append(RewriteRecord(rewrite.rule, "body." + where, "removed"))
    return bool(found)


def _locate(node: Any, parts: list[str], where: str) -> Iterator[tuple[Any, Any, str]]:
    """Yield (container, key, dotted path) for every existing location matching `parts`."""
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        yield from _locate(node, rest, where)
        for key, child in list(_children(node)):
            if isinstance(child, (dict, list)):
                yield from _locate(child, parts, _join(where, key))
        return
    for key, child in list(_children(node)):
        if head != "*" and str(key) != head:
            continue
        if rest:
            if isinstance(child, (dict, list)):
                yield from _locate(child, rest, _join(where, key))
        else:
            yield node, key, _join(where, key)


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def _join(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else str(key))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --- query and headers ------------------------------------------------------------------------------


def _query_set(query: Pairs, rewrite: QuerySet, records: list[RewriteRecord]) -> tuple[Pairs, bool]:
    for name, allowed in rewrite.only_if_query.items():
        values = [v for k, v in query if k == name]
        if not values or any(v not in allowed for v in values):
            return query, False
    present = [v for k, v in query if k == rewrite.param]
    if not present and rewrite.when == "present":
        return query, False
    if present == [rewrite.value]:
        return query, False
    kept = tuple((k, v) for k, v in query if k != rewrite.param)
    records.append(RewriteRecord(rewrite.rule, "query." + rewrite.param, "set" if present else "added"))
    return (*kept, (rewrite.param, rewrite.value)), True


def _header_set(
    headers: Pairs, name: str, value: str, rule: str, records: list[RewriteRecord]
) -> tuple[Pairs, bool]:
    lower = name.lower()
    present = [v for k, v in headers if k.lower() == lower]
    if present == [value]:
        return headers, False
    kept = tuple((k, v) for k, v in headers if k.lower() != lower)
    records.append(RewriteRecord(rule, "header." + lower, "set" if present else "added"))
    return (*kept, (name, value)), True


def _header_remove(headers: Pairs, rewrite: HeaderRemove, records: list[RewriteRecord]) -> tuple[Pairs, bool]:
    lower = rewrite.name.lower()
    kept = tuple((k, v) for k, v in headers if k.lower() != lower)
    if len(kept) == len(headers):
        return headers, False
    records.append(RewriteRecord(rewrite.rule, "header." + lower, "removed"))
    return kept, True

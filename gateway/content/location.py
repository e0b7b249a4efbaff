"""Locations: where an input sat, as a path that never holds the content itself.

    body.messages[0].content[1].image_url.url     a JSON string leaf
    body.metadata{2}#key                          a JSON key that is not an identifier, by position
    body.labels.$json.accent                      JSON inside a string
    body.$shadowed[0]                             a value hidden by a duplicate key
    body.messages[0].content@120                  media starting at character 120 of a string
    form.image[1], query.q, header.x-note, cookie.draft, ws.audio
    archive:form.file/word/media/image1.png       a member of a container
"""

from __future__ import annotations

import re

__all__ = ["field_label", "member_location"]

_IDENTIFIER = re.compile(r"[A-Za-z0-9_$@:\-]{1,64}")
_FIELD = re.compile(r"[A-Za-z0-9_$@:.\[\]\-]{1,64}")


def member_location(parent: str, member: str) -> str:
    """Where a member of a container sat: `archive:form.file/word/media/image1.png`."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in member)[:200]
    prefix = parent if parent.startswith("archive:") else f"archive:{parent}"
    return f"{prefix}/{clean}"


def key_label(key: str, index: int) -> str | None:
    """A JSON key as shown in a location, or None when it is not an identifier (shown by position)."""
    return key if _IDENTIFIER.fullmatch(key) else None


def field_label(name: str, index: int) -> str:
    """A form field, query parameter or cookie name as shown in a location (position if odd)."""
    return name if _FIELD.fullmatch(name) else f"#{index}"

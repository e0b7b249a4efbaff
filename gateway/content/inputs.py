"""Inputs: everything a request carries, with where each piece sat.

Produced by the decoders from (endpoint, headers, body bytes); consumed by detectors and the
vault. Locations are paths, never content: `body.messages[0].content[1].image_url.url`,
`form.image[0]`, `archive:form.file/word/media/image1.png`, `query.prompt`, `header.x-prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Inputs", "MediaItem", "MediaKind", "Reference", "TextItem"]

MediaKind = Literal["image", "audio", "video", "document", "archive", "other"]


@dataclass(frozen=True, slots=True)
class TextItem:
    """A piece of text the user sends."""

    text: str
    location: str


@dataclass(frozen=True, slots=True)
class MediaItem:
    """A binary item the user sends: decoded bytes, the sniffed type, and what the client claimed."""

    data: bytes = field(repr=False)
    kind: MediaKind
    sniffed_type: str
    declared_type: str
    location: str
    name: str = ""
    """file name as sent (multipart filename, archive member); may be empty."""


@dataclass(frozen=True, slots=True)
class Reference:
    """Something the provider will fetch or look up: a remote URL or a provider file id."""

    kind: Literal["url", "file_id"]
    value: str
    location: str


@dataclass(frozen=True, slots=True)
class Inputs:
    texts: tuple[TextItem, ...] = ()
    media: tuple[MediaItem, ...] = ()
    references: tuple[Reference, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.texts or self.media or self.references)

    def merged(self, other: Inputs) -> Inputs:
        return Inputs(self.texts + other.texts, self.media + other.media, self.references + other.references)

"""Documents: PDF (text, images, attachments), SVG and other XML (text, embedded images), HTML,
RTF (text and pictures).

XML goes through defusedxml, so entity expansion and external entities are refused (an SVG or
office part that needs them is uninspectable). A PDF that needs a password is uninspectable.
"""

from __future__ import annotations

import io
import logging
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from defusedxml import ElementTree as SafeElementTree
from pypdf import PageObject, PdfReader

from gateway.errors import TooLargeError, UninspectableError

from .failure import translated
from .location import member_location

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from .collector import Collector

__all__ = ["expand_html", "expand_pdf", "expand_rtf", "expand_svg", "expand_xml"]

logging.getLogger("pypdf").setLevel(logging.ERROR)

# -- PDF -------------------------------------------------------------------------------------------


def expand_pdf(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """The text of every page, every image on it, and every attached file."""
    limits = sink.limits
    with translated("PDF document", location):
        reader = PdfReader(io.BytesIO(data), strict=False)
        _unlock(reader, location)
        if len(reader.pages) > limits.max_archive_members:
            raise TooLargeError(f"PDF has more than {limits.max_archive_members} pages", location=location)
        for number, page in enumerate(reader.pages, start=1):
            _expand_pdf_page(sink, page, member_location(location, f"page[{number}]"), depth)
        for name, contents in reader.attachments.items():
            for content in contents:
                sink.add_blob(content, member_location(location, name), depth + 1, name=name)


def _unlock(reader: PdfReader, location: str) -> None:
    """An encrypted PDF is read only when it opens without a password (permissions-only encryption)."""
    if reader.is_encrypted and not reader.decrypt(""):
        raise UninspectableError("PDF is password-protected", location=location)


def _expand_pdf_page(sink: Collector, page: PageObject, location: str, depth: int) -> None:
    text = page.extract_text()
    sink.add_string(text, location, depth + 1, request_level=False)
    for index, picture in enumerate(page.images):
        sink.add_blob(picture.data, f"{location}/image[{index}]", depth + 1, name=picture.name)


# -- XML and SVG -----------------------------------------------------------------------------------

_PARAGRAPH_ENDS = frozenset({"p", "br", "tab", "si", "row", "tr", "tc", "text", "title", "desc", "h", "li"})
_RUNS = frozenset({"t", "r", "tspan", "span"})
_TEXT_ATTRIBUTES = frozenset({"descr", "title", "alt", "label", "aria-label", "placeholder"})


def expand_svg(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """SVG text, and the images embedded in its attributes (`href="data:image/png;base64,…"`)."""
    expand_xml(sink, data, location, depth)


def expand_xml(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """The text content of an XML document (office parts, SVG, RSS...) and its attribute values."""
    with translated("XML document", location):
        root = SafeElementTree.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    pieces: list[str] = []
    _collect_xml_text(root, pieces)
    sink.add_string("".join(pieces), location, depth + 1, request_level=False)
    for index, value in enumerate(_attribute_values(root)):
        sink.add_string(value, f"{location}#attr[{index}]", depth + 1, request_level=False)


def _collect_xml_text(root: Element, pieces: list[str]) -> None:
    """Document-order text: runs joined as they are (Word splits words across runs), blocks on lines."""
    stack: list[tuple[Element, bool]] = [(root, False)]
    while stack:
        element, closing = stack.pop()
        name = _local_name(element.tag)
        if closing:
            if name in _PARAGRAPH_ENDS:
                pieces.append("\n")
            elif name not in _RUNS:
                pieces.append(" ")
            if element.tail:
                pieces.append(element.tail)
            continue
        if element.text:
            pieces.append(element.text)
        stack.append((element, True))
        stack.extend((child, False) for child in reversed(list(element)))


def _attribute_values(root: Element) -> list[str]:
    """Attribute values that carry content: embedded data URLs and alt text (`descr`, `title`, `alt`)."""
    values = []
    for element in root.iter():
        for name, value in element.attrib.items():
            if _local_name(name) in _TEXT_ATTRIBUTES or "data:" in value[:64].lower():
                values.append(value)
    return values


def _local_name(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# -- HTML ------------------------------------------------------------------------------------------


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.attributes: list[str] = []

    def handle_data(self, data: str) -> None:
        self.pieces.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.pieces.append("\n")
        self.attributes.extend(
            value for name, value in attrs if value and (name in _TEXT_ATTRIBUTES or "data:" in value[:64].lower())
        )


def expand_html(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """HTML text, and attribute values (inline images in `src`, text in `alt`/`title`)."""
    parser = _HtmlText()
    with translated("HTML document", location):
        parser.feed(data.decode("utf-8", "replace"))
        parser.close()
    sink.add_string("".join(parser.pieces), location, depth + 1, request_level=False)
    for index, value in enumerate(parser.attributes):
        sink.add_string(value, f"{location}#attr[{index}]", depth + 1, request_level=False)


# -- RTF -------------------------------------------------------------------------------------------

_RTF_HEX = re.compile(r"[0-9a-fA-F\r\n]{64,}")
_RTF_TOKEN = re.compile(
    r"\\([a-zA-Z]+)(-?\d+)? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z'])|([{}])|([^\\{}\r\n]+)|[\r\n]+"
)
_RTF_BREAKS = frozenset({"par", "line", "row", "cell", "tab", "page", "sect"})
_RTF_SKIPPED = frozenset({"fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "themedata",
                          "datastore", "latentstyles", "listtable", "listoverridetable", "rsidtbl",
                          "generator", "xmlnstbl", "mmathPr", "fldinst"})


def expand_rtf(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """RTF text (control words removed, escapes decoded) and its pictures (hex-encoded images)."""
    text = data.decode("latin-1")
    for index, picture in enumerate(_rtf_pictures(text, location)):
        sink.add_blob(picture, f"{location}/image[{index}]", depth + 1)
    sink.add_string(_rtf_text(text), location, depth + 1, request_level=False)


def _rtf_pictures(text: str, location: str) -> list[bytes]:
    pictures = []
    for start in _group_starts(text, "\\pict"):
        group = text[start : _group_end(text, start)]
        runs = _RTF_HEX.findall(group)
        if runs:
            hex_digits = re.sub(r"\s+", "", max(runs, key=len))
            try:
                pictures.append(bytes.fromhex(hex_digits[: len(hex_digits) // 2 * 2]))
            except ValueError as exc:
                raise UninspectableError("malformed RTF picture", location=location) from exc
    return pictures


def _group_starts(text: str, word: str) -> list[int]:
    starts = []
    index = text.find(word)
    while index != -1:
        starts.append(index)
        index = text.find(word, index + 1)
    return starts


def _group_end(text: str, start: int) -> int:
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return len(text)


def _rtf_text(text: str) -> str:
    """Visible text of an RTF document: skipped destinations dropped, escapes decoded."""
    out: list[str] = []
    skip_depth: int | None = None
    depth = 0
    pending_star = False
    drop_fallback = False
    for match in _RTF_TOKEN.finditer(text):
        word, argument, hex_code, symbol, brace, plain = match.groups()
        if brace:
            depth += 1 if brace == "{" else -1
            if skip_depth is not None and depth < skip_depth:
                skip_depth = None
            continue
        if skip_depth is not None:
            continue
        if symbol == "*":
            pending_star = True
        elif word:
            if pending_star or word in _RTF_SKIPPED:
                skip_depth = depth
            elif word in _RTF_BREAKS:
                out.append("\n")
            elif word == "u" and argument:
                out.append(chr(int(argument) % 0x10000))
                drop_fallback = True
                continue
            pending_star = False
        elif hex_code:
            out.append(bytes.fromhex(hex_code).decode("cp1252", "replace"))
        elif symbol in ("\\", "{", "}"):
            out.append(symbol)
        elif plain:
            out.append(plain[1:] if drop_fallback else plain)
        drop_fallback = False
    return "".join(out)

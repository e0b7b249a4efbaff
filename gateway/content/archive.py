"""Archives: zip (and the formats built on it: docx, pptx, xlsx, OpenDocument, EPUB), tar, and
single compressed streams (gzip, bzip2, xz, zstd).

Each archive is bounded by its member count and by its uncompressed size, both as declared in
its headers (checked before reading anything) and as actually read (checked while reading, so a
lying header cannot inflate past the cap). Encrypted members are uninspectable.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import tarfile
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.errors import InspectionError, TooLargeError, UninspectableError

from .encoding import decode_body
from .failure import translated
from .location import member_location
from .sniff import Sniffed

if TYPE_CHECKING:
    from .collector import Collector

__all__ = ["ZIP_TYPES", "expand_compressed", "expand_tar", "expand_zip", "refine_zip_type"]

_CHUNK = 64 * 1024
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_OFFICE_PARTS = {"word/document.xml": _DOCX, "ppt/presentation.xml": _PPTX, "xl/workbook.xml": _XLSX}
ZIP_TYPES = frozenset(
    {
        "application/zip",
        _DOCX,
        _PPTX,
        _XLSX,
        "application/vnd.oasis.opendocument",
        "application/epub+zip",
    }
)
_SKIPPED_DIRS = ("fonts/", "printerSettings/")
"""members of office packages that carry no user content and are not decodable (obfuscated fonts)."""
_SKIPPED_NAMES = ("Thumbs.db",)
"""Windows' thumbnail cache (an OLE file) that archivers sweep in: thumbnails of files already there."""


def refine_zip_type(sink: Collector, data: bytes, location: str) -> Sniffed:
    """A zip's more specific type, from its member names: docx, pptx, xlsx, OpenDocument, EPUB."""
    _check_members(_declared_zip_members(data), sink.limits.max_archive_members, location)
    with translated("zip archive", location):
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    for part, mime in _OFFICE_PARTS.items():
        if part in names:
            return Sniffed(mime, "document")
    if "mimetype" in names and "META-INF/container.xml" in names:
        return Sniffed("application/epub+zip", "document")
    if "mimetype" in names and "content.xml" in names:
        return Sniffed("application/vnd.oasis.opendocument", "document")
    return Sniffed("application/zip", "archive")


def expand_zip(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """Every member of a zip archive, each sniffed and expanded in turn."""
    limits = sink.limits
    with translated("zip archive", location):
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    _check_members(len(infos), limits.max_archive_members, location)
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_archive_bytes:
        raise TooLargeError(f"zip declares more than {limits.max_archive_bytes} bytes", location=location)
    office = refine_zip_type(sink, data, location).kind == "document"
    budget = limits.max_archive_bytes
    for info in infos:
        if _skipped(info.filename, office):
            continue
        where = _member(location, info.filename)
        if info.flag_bits & 0x1:
            raise UninspectableError("encrypted zip member", location=where)
        content = _read_zip_member(archive, info, where)
        budget -= len(content)
        if budget < 0:
            raise TooLargeError(f"zip inflates past {limits.max_archive_bytes} bytes", location=location)
        sink.add_blob(content, where, depth + 1, name=info.filename.rsplit("/", 1)[-1])


def _declared_zip_members(data: bytes) -> int:
    """The entry count in the end-of-central-directory record (zip64 too), read before zipfile
    walks the central directory: a million-entry zip is refused without parsing a million entries."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end == -1 or end + 22 > len(data):
        return 0
    (count,) = struct.unpack_from("<H", data, end + 10)
    if count != 0xFFFF:
        return count
    zip64 = data.rfind(b"PK\x06\x06", 0, end)
    if zip64 == -1 or zip64 + 40 > len(data):
        return count
    (count64,) = struct.unpack_from("<Q", data, zip64 + 32)
    return int(count64)


def _skipped(name: str, office: bool) -> bool:
    if name.rsplit("/", 1)[-1] in _SKIPPED_NAMES:
        return True
    return office and name.startswith(_SKIPPED_DIRS, name.find("/") + 1)


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, location: str) -> bytes:
    """A member's bytes, never more than its declared size (a lying header is an error)."""
    out = bytearray()
    with translated("zip member", location), archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            out += chunk
            if len(out) > info.file_size:
                raise UninspectableError("zip member larger than declared", location=location)
    return bytes(out)


def expand_tar(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """Every regular file of a tar archive (links and devices carry no content)."""
    limits = sink.limits
    budget = limits.max_archive_bytes
    count = 0
    with translated("tar archive", location), tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            count += 1
            _check_members(count, limits.max_archive_members, location)
            if not info.isfile():
                continue
            budget -= info.size
            if budget < 0:
                raise TooLargeError(
                    f"tar holds more than {limits.max_archive_bytes} bytes", location=location
                )
            where = _member(location, info.name)
            stream = archive.extractfile(info)
            content = stream.read(info.size + 1) if stream is not None else b""
            if len(content) != info.size:
                raise UninspectableError("truncated tar member", location=where)
            sink.add_blob(content, where, depth + 1, name=info.name.rsplit("/", 1)[-1])


def expand_compressed(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """The content of a gzip, bzip2, xz or zstd stream, decompressed with a hard cap."""
    cap = min(sink.limits.max_archive_bytes, sink.limits.max_decoded_bytes - sink.decoded_bytes)
    content = _decompress(data, max(cap, 0), location)
    sink.add_blob(content, _member(location, "(decompressed)"), depth + 1)


def _decompress(data: bytes, cap: int, location: str) -> bytes:
    if data.startswith(b"\x1f\x8b"):
        return _relocated(lambda: decode_body(data, "gzip", cap), location)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return _relocated(lambda: decode_body(data, "zstd", cap), location)
    if data.startswith(b"BZh"):
        return _stream_decompress(bz2.BZ2Decompressor(), data, cap, location, "bzip2")
    return _stream_decompress(lzma.LZMADecompressor(memlimit=256 * 1024 * 1024), data, cap, location, "xz")


def _relocated(decode: Callable[[], bytes], location: str) -> bytes:
    """Run a body decoder on a member, reporting errors at the member's location."""
    try:
        return decode()
    except InspectionError as exc:
        raise type(exc)(str(exc), location=location) from exc


def _stream_decompress(
    decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes, cap: int, location: str, name: str
) -> bytes:
    out = bytearray()
    with translated(f"{name} stream", location):
        out += decompressor.decompress(data, cap + 1)
        while not decompressor.eof and not decompressor.needs_input and len(out) <= cap:
            out += decompressor.decompress(b"", cap + 1 - len(out))
    if len(out) > cap:
        raise TooLargeError(f"{name} stream inflates past {cap} bytes", location=location)
    if not decompressor.eof:
        raise UninspectableError(f"truncated {name} stream", location=location)
    return bytes(out)


def _check_members(count: int, limit: int, location: str) -> None:
    if count > limit:
        raise TooLargeError(f"archive has more than {limit} members", location=location)


def _member(location: str, name: str) -> str:
    return member_location(location, name)

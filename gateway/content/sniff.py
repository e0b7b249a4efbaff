"""Sniffing: what a blob of bytes is, from its magic bytes. Declared types are never trusted.

`sniff(data)` answers a `Sniffed` (MIME type, media kind, and whether the signature is strong
enough to pick a blob out of arbitrary text) or None when nothing is recognised. Only formats the
decoders read are recognised as media (Pillow for images, PyAV's FFmpeg for audio and video): JPEG
XL, OpenEXR or Radiance HDR stay unrecognised: refused as uploads (unrecognised binary), passed
over as non-media by `provenance scan` (docs/outputs.md) rather than reported as undecodable. Text is not
sniffed here (see `decode_text`): recognising text is a question of encodings, not signatures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .inputs import MediaKind

__all__ = ["Sniffed", "decode_text", "sniff"]

_HEAD = 4096


@dataclass(frozen=True, slots=True)
class Sniffed:
    mime: str
    kind: MediaKind
    strong: bool = True
    """strong signatures are specific enough to trust in a base64 run found inside text."""


_PREFIXES: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\x89PNG\r\n\x1a\n", Sniffed("image/png", "image")),
    (b"\xff\xd8\xff", Sniffed("image/jpeg", "image")),
    (b"GIF87a", Sniffed("image/gif", "image")),
    (b"GIF89a", Sniffed("image/gif", "image")),
    (b"II*\x00", Sniffed("image/tiff", "image")),
    (b"MM\x00*", Sniffed("image/tiff", "image")),
    (b"8BPS", Sniffed("image/vnd.adobe.photoshop", "image")),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", Sniffed("image/jp2", "image")),
    (b"\xff\x4f\xff\x51", Sniffed("image/jp2", "image")),
    (b"\xd7\xcd\xc6\x9a", Sniffed("image/wmf", "image")),
    (b"%PDF-", Sniffed("application/pdf", "document")),
    (b"PK\x03\x04", Sniffed("application/zip", "archive")),
    (b"PK\x05\x06", Sniffed("application/zip", "archive")),
    (b"\x1f\x8b", Sniffed("application/gzip", "archive")),
    (b"BZh", Sniffed("application/x-bzip2", "archive", strong=False)),
    (b"\xfd7zXZ\x00", Sniffed("application/x-xz", "archive")),
    (b"\x28\xb5\x2f\xfd", Sniffed("application/zstd", "archive")),
    (b"7z\xbc\xaf\x27\x1c", Sniffed("application/x-7z-compressed", "archive")),
    (b"Rar!\x1a\x07", Sniffed("application/vnd.rar", "archive")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Sniffed("application/x-ole-storage", "document")),
    (b"ID3", Sniffed("audio/mpeg", "audio")),
    (b"OggS", Sniffed("audio/ogg", "audio")),
    (b"fLaC", Sniffed("audio/flac", "audio")),
    (b"\x1a\x45\xdf\xa3", Sniffed("video/webm", "video")),
    (b"{\\rtf", Sniffed("text/rtf", "document")),
    (b"qoif", Sniffed("image/qoi", "image")),
    (b"DDS \x7c\x00\x00\x00", Sniffed("image/vnd.ms-dds", "image")),
    (b"FLV\x01", Sniffed("video/x-flv", "video")),
    (b"\x00\x00\x01\xba", Sniffed("video/mpeg", "video")),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c", Sniffed("video/x-ms-asf", "video")),
    (b"#!AMR", Sniffed("audio/amr", "audio")),
    (b".snd", Sniffed("audio/basic", "audio", strong=False)),
    (b"caff\x00\x01", Sniffed("audio/x-caf", "audio")),
    (b"OTTO", Sniffed("font/otf", "other", strong=False)),
    (b"\x00\x05\x16\x07", Sniffed("application/applefile", "other", strong=False)),
    (b"\x00\x00\x00\x01Bud1", Sniffed("application/x-apple-ds-store", "other", strong=False)),
    (b"\x00\x01\x00\x00\x00", Sniffed("font/ttf", "other", strong=False)),
    (b"wOFF", Sniffed("font/woff", "other", strong=False)),
    (b"wOF2", Sniffed("font/woff2", "other", strong=False)),
)

_RIFF = {
    b"WEBP": Sniffed("image/webp", "image"),
    b"WAVE": Sniffed("audio/wav", "audio"),
    b"AVI ": Sniffed("video/x-msvideo", "video"),
}
_FORM = {b"AIFF": Sniffed("audio/aiff", "audio"), b"AIFC": Sniffed("audio/aiff", "audio")}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AUDIO_MP4_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A "})

_MARKUP = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]{0,200}\?>\s*)?(?:<!--.{0,2000}?-->\s*)*(?:<!doctype\s+(\w+)|<(\w+))",
    re.IGNORECASE | re.DOTALL,
)


def sniff(data: bytes) -> Sniffed | None:
    """The type of `data` by its signature, or None when no known signature matches."""
    head = data[:_HEAD]
    for prefix, sniffed in _PREFIXES:
        if head.startswith(prefix):
            return sniffed
    return (
        _sniff_emf(head)
        or _sniff_chunked(head)
        or _sniff_iso_media(head)
        or _sniff_tar(head)
        or _sniff_markup(head)
        or _sniff_mpeg_audio(head)
        or _sniff_bmp(head)
        or _sniff_small_images(head)
        or _sniff_mpeg_ts(head)
        or _sniff_tga(data)
        or _sniff_pdf_late(head)
    )


def _sniff_emf(head: bytes) -> Sniffed | None:
    """Windows enhanced metafiles (office documents embed them): record type 1, then ` EMF` at 40."""
    if len(head) >= 44 and head.startswith(b"\x01\x00\x00\x00") and head[40:44] == b" EMF":
        return Sniffed("image/emf", "image")
    return None


def _sniff_chunked(head: bytes) -> Sniffed | None:
    if len(head) < 12:
        return None
    if head.startswith(b"RIFF"):
        return _RIFF.get(head[8:12])
    if head.startswith(b"FORM"):
        return _FORM.get(head[8:12])
    return None


def _sniff_iso_media(head: bytes) -> Sniffed | None:
    """ISO base media files (MP4, MOV, M4A, HEIC, AVIF): a box `ftyp` with brands."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    brands = {head[8:12]}
    end = min(max(size, 16), len(head))
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    major = head[8:12]
    if major in _AVIF_BRANDS or (major == b"mif1" and brands & _AVIF_BRANDS):
        return Sniffed("image/avif", "image")
    if major in _HEIF_BRANDS:
        return Sniffed("image/heic", "image")
    if major in _AUDIO_MP4_BRANDS:
        return Sniffed("audio/mp4", "audio")
    if major == b"qt  ":
        return Sniffed("video/quicktime", "video")
    return Sniffed("video/mp4", "video")


def _sniff_tar(head: bytes) -> Sniffed | None:
    if len(head) >= 262 and head[257:262] == b"ustar":
        return Sniffed("application/x-tar", "archive")
    return None


def _sniff_markup(head: bytes) -> Sniffed | None:
    match = _MARKUP.match(head)
    if not match:
        return None
    root = (match.group(1) or match.group(2) or b"").lower()
    if root == b"svg":
        return Sniffed("image/svg+xml", "image")
    if root == b"html":
        return Sniffed("text/html", "document", strong=False)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml"):
        return Sniffed("application/xml", "document", strong=False)
    return None


def _sniff_mpeg_audio(head: bytes) -> Sniffed | None:
    """MPEG audio frame sync (MP3 without ID3, AAC in ADTS): weak, so only trusted for whole blobs."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:
        return Sniffed("audio/aac", "audio", strong=False)
    layer_ok = head[1] & 0x06 != 0
    version_ok = head[1] & 0x18 != 0x08
    bitrate_ok = head[2] & 0xF0 != 0xF0
    if layer_ok and version_ok and bitrate_ok:
        return Sniffed("audio/mpeg", "audio", strong=False)
    return None


def _sniff_bmp(head: bytes) -> Sniffed | None:
    """BMP: `BM`, then the file size and two reserved zero words (weak: two letters of text)."""
    if len(head) >= 26 and head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00":
        return Sniffed("image/bmp", "image", strong=False)
    return None


_PNM = re.compile(rb"P([1-6])(?:\s|#[^\n]*\n)+\d+(?:\s|#[^\n]*\n)+\d+\s|P7\nWIDTH ")
_PNM_PLAIN_BODY = re.compile(rb"[\d\s]*")


def _sniff_small_images(head: bytes) -> Sniffed | None:
    """Formats Pillow reads with short or loose signatures (weak: trusted for whole blobs only):
    Windows icons and cursors, Netpbm (PBM/PGM/PPM/PAM), PCX."""
    if len(head) >= 22 and head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and head[4:6] != b"\x00\x00":
        return Sniffed("image/vnd.microsoft.icon", "image", strong=False)
    if _netpbm(head):
        return Sniffed("image/x-portable-anymap", "image", strong=False)
    if len(head) >= 128 and head[0] == 0x0A and head[1] in (0, 2, 3, 4, 5) and head[2] == 1 and head[3] in (1, 2, 4, 8):
        return Sniffed("image/vnd.zbrush.pcx", "image", strong=False)
    return None


def _netpbm(head: bytes) -> bool:
    """A Netpbm header; for the plain (text) variants P1-P3 also nothing but numbers after it, so
    a text that merely starts with "P1 12 15" stays text."""
    match = _PNM.match(head)
    if match is None:
        return False
    plain = match.group(1) in (b"1", b"2", b"3")
    return not plain or _PNM_PLAIN_BODY.fullmatch(head, match.end()) is not None


def _sniff_mpeg_ts(head: bytes) -> Sniffed | None:
    """MPEG transport stream: a 0x47 sync byte every 188 bytes (three packets' worth)."""
    if len(head) >= 3 * 188 and all(head[i] == 0x47 for i in (0, 188, 376)):
        return Sniffed("video/mp2t", "video", strong=False)
    return None


def _sniff_tga(data: bytes) -> Sniffed | None:
    """TGA 2.0: its signature is the file's last 18 bytes (TGA 1.0 files have none and stay unrecognised)."""
    if len(data) >= 44 and data[-18:] == b"TRUEVISION-XFILE.\x00":
        return Sniffed("image/x-tga", "image", strong=False)
    return None


def _sniff_pdf_late(head: bytes) -> Sniffed | None:
    """PDF readers accept `%PDF-` anywhere in the first 1024 bytes."""
    if b"%PDF-" in head[:1024]:
        return Sniffed("application/pdf", "document")
    return None


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


def decode_text(data: bytes) -> str | None:
    """`data` as text when it is text (UTF-8, UTF-16 with a BOM, or clean Windows-1252), else None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if _CONTROL.search(data):
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return None

"""Test media, generated here (Pillow, zipfile, wave, PyAV, pypdf): no binary fixtures."""

from __future__ import annotations

import base64
import io
import struct
import tarfile
import wave
import zipfile
import zlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image
from pypdf import PdfWriter


def png(size: tuple[int, int] = (16, 12), color: tuple[int, ...] = (200, 30, 30, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def image(fmt: str, size: tuple[int, int] = (16, 12), **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, fmt, **options)
    return buffer.getvalue()


def animated(fmt: str, frames: int = 3, size: tuple[int, int] = (8, 8)) -> bytes:
    pictures = [Image.new("RGB", size, (40 * i, 255 - 40 * i, 0)) for i in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, fmt, save_all=True, append_images=pictures[1:], duration=100)
    return buffer.getvalue()


def jpeg_rotated() -> bytes:
    """A 20×10 JPEG whose EXIF says 'rotate 90° clockwise' (orientation 6): upright it is 10×20."""
    picture = Image.new("RGB", (20, 10), (0, 200, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG declaring a huge canvas (the IDAT holds only a few rows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64_urlsafe_unpadded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64_wrapped(data: bytes) -> str:
    return base64.encodebytes(data).decode()


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def encrypted_zip(members: dict[str, bytes]) -> bytes:
    """A zip whose members carry the 'encrypted' flag (zipfile cannot write real ZipCrypto)."""
    data = bytearray(zip_of(members, zipfile.ZIP_STORED))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (index := data.find(signature, start)) != -1:
            data[index + flag_offset] |= 0x01
            start = index + 4
    return bytes(data)


def tar_of(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="png" ContentType="image/png"/></Types>'
)


def docx(text: str, picture: bytes | None = None) -> bytes:
    words = text.split(" ", 1)
    runs = "".join(f"<w:r><w:t>{word}</w:t></w:r>" for word in [words[0] + " ", *words[1:]])
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p>{runs}</w:p></w:body></w:document>"
    )
    members = {"[Content_Types].xml": _CONTENT_TYPES.encode(), "word/document.xml": document.encode()}
    if picture is not None:
        members["word/media/image1.png"] = picture
    return zip_of(members)


def pptx(text: str, picture: bytes) -> bytes:
    slide = (
        '<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        f"<p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"
        "</p:spTree></p:cSld></p:sld>"
    )
    return zip_of(
        {
            "[Content_Types].xml": _CONTENT_TYPES.encode(),
            "ppt/presentation.xml": b"<p:presentation xmlns:p='urn:p'/>",
            "ppt/slides/slide1.xml": slide.encode(),
            "ppt/media/image1.png": picture,
        }
    )


def xlsx(text: str) -> bytes:
    strings = f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>{text}</t></si></sst>'
    return zip_of(
        {
            "[Content_Types].xml": _CONTENT_TYPES.encode(),
            "xl/workbook.xml": b"<workbook/>",
            "xl/sharedStrings.xml": strings.encode(),
        }
    )


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (hand-built objects, correct xref)."""
    stream = f"BT /F1 18 Tf 40 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_with_image() -> bytes:
    """A PDF whose page is an image (Pillow's PDF writer embeds it as an XObject)."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (250, 10, 10)).save(buffer, "PDF")
    return buffer.getvalue()


def encrypted_pdf(text: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf_with_text(text)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def svg_with(picture: bytes, text: str) -> bytes:
    return (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
        f"<text x='1' y='5'>{text}</text>"
        f'<image xlink:href="data:image/png;base64,{b64(picture)}" width="10" height="10"/></svg>'
    ).encode()


def html_with(picture: bytes, text: str) -> bytes:
    source = f"data:image/png;base64,{b64(picture)}"
    return f'<!DOCTYPE html><html><body><p>{text}</p><img src="{source}"></body></html>'.encode()


def rtf_with(picture: bytes, text: str) -> bytes:
    return (
        "{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 " + text + "\\par "
        "{\\pict\\pngblip\\picw16\\pich12 " + picture.hex() + "}}"
    ).encode()


def tone(seconds: float = 1.0, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    pcm = (tone(seconds, rate) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def pcm16(seconds: float = 1.0, rate: int = 24_000) -> bytes:
    return (tone(seconds, rate) * 32767).astype("<i2").tobytes()


_AUDIO_CODECS = {
    "mp3": ("mp3", "libmp3lame", 44_100),
    "ogg": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", 44_100),
    "m4a": ("ipod", "aac", 44_100),
}


def encoded_audio(kind: str, seconds: float = 1.0) -> bytes:
    """Audio encoded by PyAV's bundled FFmpeg: mp3, ogg (Opus), flac, m4a (AAC)."""
    container_format, codec, rate = _AUDIO_CODECS[kind]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        _mux_tone(container, stream, seconds, rate, step=1024)
    return buffer.getvalue()


def _mux_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float, rate: int,
              step: int) -> None:
    """`tone(seconds, rate)` encoded into `stream` in frames of `step` samples, then flushed."""
    fmt = stream.codec_context.format.name
    samples = tone(seconds, rate)
    for start in range(0, len(samples), step):
        frame = _audio_frame(samples[start : start + step], fmt, rate)
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _audio_frame(chunk: np.ndarray, fmt: str, rate: int) -> av.AudioFrame:
    if fmt.startswith("s16"):
        array = (chunk * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(array, format="s16p" if fmt.endswith("p") else "s16", layout="mono")
    elif fmt.startswith("s32"):
        array = (chunk * 2**31 * 0.99).astype(np.int32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(array, format=fmt, layout="mono")
    else:
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format=fmt, layout="mono")
    frame.sample_rate = rate
    return frame


def mp4(seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(int(seconds * fps)):
            array = np.full((size[1], size[0], 3), (index * 8) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def multipart_body(parts: list[tuple[str, str | None, str | None, bytes, dict[str, str]]],
                   boundary: str = "----greenroom-test") -> tuple[bytes, str]:
    """(name, filename, content type, data, extra headers) parts → (body, Content-Type)."""
    out = bytearray()
    for name, filename, content_type, data, extra in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        for header, value in extra.items():
            out += f"{header}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    quoted = f'"{boundary}"' if any(ch in boundary for ch in "()<>@,;:\\/[]?= ") else boundary
    return bytes(out), f"multipart/form-data; boundary={quoted}"


def muxed(container_format: str, video: str | None = None, audio: str | None = None, *, rate: int = 16_000,
          seconds: float = 1.0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A container of `container_format` with a video stream (`video` codec, 2 fps) and/or a mono
    audio stream (`audio` codec at `rate`), as PyAV's bundled FFmpeg writes it (streams are all added
    before the first packet: FFmpeg writes the header then)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        picture = container.add_stream(video, rate=2) if video is not None else None
        sound = container.add_stream(audio, rate=rate) if audio is not None else None
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = size[0], size[1], "yuv420p"
        if sound is not None:
            sound.layout = "mono"
        if picture is not None:
            for index in range(max(1, int(seconds * 2))):
                array = np.full((size[1], size[0], 3), 60 + index * 40, dtype=np.uint8)
                for packet in picture.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in picture.encode(None):
                container.mux(packet)
        if sound is not None:
            _mux_tone(container, sound, seconds, rate, step=sound.codec_context.frame_size or 1024)
    return buffer.getvalue()

"""ContentLimits: how much decoding one request may cost before it is refused.

Every decoder checks these before and while it works, so no body is inflated past its cap.
Inflating is not free (zlib runs at about 65 MB/s on the reference machine), so the byte caps
also bound the time to refuse a bomb: 64 MiB is refused in about a second. Raise them for
endpoints that take large files (OpenAI /v1/files, Gemini uploads), knowing the cost.
Past a limit → TooLargeError (`content.too_large`) or TooDeepError (`content.too_deep`).
The proxy maps its config values onto this type; the defaults are sane for one request.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContentLimits"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ContentLimits:
    """Bounds on the work and memory one request's decoding may use."""

    max_decoded_bytes: int = 64 * _MIB
    """body plus every byte produced by decoding (base64, archives, documents), added up."""
    max_json_depth: int = 64
    """nesting of one JSON document, objects and arrays counted."""
    max_archive_members: int = 1_000
    """members of one archive (zip, tar) and pages of one PDF."""
    max_archive_depth: int = 4
    """nesting of containers: archives, documents, encoded strings (base64, nested JSON)."""
    max_archive_bytes: int = 64 * _MIB
    """uncompressed bytes of one archive, by its declared sizes and by what is actually read."""
    max_image_pixels: int = 64_000_000
    """pixels of one image or video frame (width × height)."""
    max_decoded_pixels: int = 128_000_000
    """pixels of all frames decoded from one image or video, added up."""
    max_frames: int = 64
    """frames decoded from one animated image, multi-page TIFF, or sampled from one video."""
    max_audio_seconds: float = 600.0
    """duration of one audio or video item."""
    video_sample_seconds: float = 2.0
    """shortest interval between two sampled video frames (widened for long videos)."""
    max_base64_bytes: int = 32 * _MIB
    """decoded size of one base64 item (data URL, inline data, bare base64 run)."""
    max_items: int = 50_000
    """texts, media items and references in one request, added up."""

"""Content decoding: from (endpoint, headers, body bytes) to Inputs, within limits.

    extract_inputs(RequestContent, ContentLimits) -> Inputs          one HTTP request
    extract_websocket_inputs(payload, is_text, ContentLimits) -> Inputs   one client WS message
    decode_image_frames(MediaItem, ContentLimits) -> list[PIL.Image]     for image detectors
    decode_audio(MediaItem, ContentLimits) -> numpy float32 mono 16 kHz   for voice detectors
    sample_video_frames(MediaItem, ContentLimits) -> list[PIL.Image]     for face/IP detectors

Every function raises only InspectionError subclasses: TooLargeError, TooDeepError,
UninspectableError (see gateway.errors), with locations and sizes, never content.
"""

from .encoding import decode_body
from .image import decode_image_frames
from .inputs import Inputs, MediaItem, Reference, TextItem
from .jsonbody import ParsedJson, dump_json, parse_json
from .limits import ContentLimits
from .media import decode_audio, sample_video_frames
from .request import RequestContent, extract_inputs
from .websocket import extract_websocket_inputs

__all__ = [
    "ContentLimits",
    "Inputs",
    "MediaItem",
    "ParsedJson",
    "Reference",
    "RequestContent",
    "TextItem",
    "decode_audio",
    "decode_body",
    "decode_image_frames",
    "dump_json",
    "extract_inputs",
    "extract_websocket_inputs",
    "parse_json",
    "sample_video_frames",
]

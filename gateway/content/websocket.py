"""extract_websocket_inputs: the Inputs of one client WebSocket message.

Client frames are JSON events walked like request bodies, so inline media parts are found the
same way (Gemini Live `realtimeInput.mediaChunks[]` / `realtime_input.media_chunks[]`, `audio`,
`video`; OpenAI Realtime `conversation.item.create` parts). The protocol-specific cases:

    OpenAI Realtime   {"type": "input_audio_buffer.append", "audio": <base64 PCM16, 24 kHz>}
    ElevenLabs        {"text": "...", "xi_api_key": ...}   (credentials are never captured)

A non-JSON text frame is text; a binary frame is sniffed like an upload.
"""

from __future__ import annotations

from typing import Any

from .collector import Collector
from .embedded import decode_base64
from .failure import translated_unexpected
from .inputs import Inputs
from .jsonbody import ParsedJson, parse_json
from .limits import ContentLimits
from .sniff import decode_text

__all__ = ["extract_websocket_inputs"]

_LOCATION = "ws"
_REALTIME_AUDIO = "audio/pcm;rate=24000"


def extract_websocket_inputs(payload: bytes | str, is_text: bool, limits: ContentLimits) -> Inputs:
    """Every text, media item and reference in one client WebSocket message."""
    with translated_unexpected(_LOCATION):
        sink = Collector(limits)
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        sink.charge(len(data), _LOCATION)
        text = payload if isinstance(payload, str) else decode_text(payload) if is_text else None
        if text is None and data.lstrip()[:1] in (b"{", b"["):
            text = decode_text(data)
        if text is None:
            sink.add_blob(data, _LOCATION, 0)
        elif text.lstrip()[:1] in ("{", "["):
            _add_event(sink, parse_json(text, limits.max_json_depth))
        else:
            sink.add_string(text, _LOCATION, 0, request_level=True)
        return sink.inputs()


def _add_event(sink: Collector, parsed: ParsedJson) -> None:
    event = parsed.value
    if _is_realtime_audio_append(event):
        audio = decode_base64(event["audio"], sink.limits.max_base64_bytes, f"{_LOCATION}.audio")
        sink.add_blob(audio, f"{_LOCATION}.audio", 1, declared_type=_REALTIME_AUDIO, raw_audio=True)
        rest = {key: value for key, value in event.items() if key != "audio"}
        parsed = ParsedJson(rest, parsed.duplicate_keys, parsed.shadowed)
    sink.add_json(parsed, _LOCATION, 0, request_level=True)


def _is_realtime_audio_append(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and event.get("type") == "input_audio_buffer.append"
        and isinstance(event.get("audio"), str)
    )

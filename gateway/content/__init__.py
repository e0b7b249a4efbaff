"""Content decoding: from (endpoint, headers, body bytes) to Inputs, within limits."""

from .encoding import decode_body
from .inputs import Inputs, MediaItem, Reference, TextItem
from .jsonbody import ParsedJson, dump_json, parse_json

__all__ = [
    "Inputs",
    "MediaItem",
    "ParsedJson",
    "Reference",
    "TextItem",
    "decode_body",
    "dump_json",
    "parse_json",
]

"""One fake "AI provider" over TLS for the end-to-end tests (raw ASGI app under uvicorn, HTTP/1.1).

    python tests/support/fake_provider.py --port P --cert leaf.pem --key leaf.key [--host 127.0.0.1]

(Run it by path: a third-party package in the venv may own the top-level name `tests`.)

It answers for every host of tests.support.pki.FAKE_HOSTS and dispatches on the Host header, using
the providers' real wire formats (see /work/shared/reference/providers.md):

  api.openai.com (and api.mistral.ai for chat)
    POST /v1/chat/completions      JSON chat.completion, or `stream: true` -> SSE `data: {chunk}` ...
                                   `data: [DONE]`
    POST /v1/responses             JSON response, or `stream: true` -> named SSE events
                                   (response.created ... response.completed)
    POST /v1/images/generations    {"created", "data": [{"b64_json": <PNG>}]}
    GET  /v1/models                model list
  api.anthropic.com
    POST /v1/messages              JSON message, or `stream: true` -> message_start,
                                   content_block_start, ping, content_block_delta x N,
                                   content_block_stop, message_delta, message_stop
  generativelanguage.googleapis.com
    POST /v1beta/models/M:generateContent, :streamGenerateContent?alt=sse
                                   (without alt=sse: a JSON array, streamed)
  api.elevenlabs.io
    POST /v1/text-to-speech/V      audio/mpeg bytes; /v1/text-to-speech/V/stream -> chunked audio, N chunks
  www.example.org
    GET /                          small HTML page
  other known hosts                a small JSON (or HTML for GET) echo

Streaming is really incremental: N events with DELAY seconds between them. Control with the request
headers `x-fake-events` / `x-fake-delay`, or the query parameters `fake_events` / `fake_delay`
(defaults: 5 events, 0.02 s).

Every request (except the control endpoint) is RECORDED: host, method, path, query string, headers
and body (base64). With Host `localhost` or `127.0.0.1`:
    GET    /__fake__/requests      -> JSON list of the records, oldest first
    DELETE /__fake__/requests      -> clears them
    GET    /__fake__/health        -> {"ok": true}
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ANTHROPIC_ANSWER",
    "ELEVENLABS_AUDIO",
    "EXAMPLE_ORG_HTML",
    "GEMINI_ANSWER",
    "OPENAI_ANSWER",
    "RESPONSES_ANSWER",
    "FakeProviderProcess",
    "FakeRecord",
    "app",
    "free_port",
    "stream_pieces",
    "wait_for_port",
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

OPENAI_ANSWER = "Hello from the fake OpenAI provider."
RESPONSES_ANSWER = "Hello from the fake OpenAI Responses API."
ANTHROPIC_ANSWER = "Hello from the fake Anthropic provider."
GEMINI_ANSWER = "Hello from the fake Gemini provider."
EXAMPLE_ORG_HTML = (
    b"<!doctype html>\n<html><head><title>Example Domain</title></head>"
    b"<body><h1>Example Domain</h1><p>fake origin for greenroom e2e tests</p></body></html>\n"
)
# A 1x1 PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# Something that starts like an MP3 (ID3 tag + MPEG frame sync); clients only need bytes.
ELEVENLABS_AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(range(256)) * 4

DEFAULT_EVENTS = 5
DEFAULT_DELAY = 0.02
MAX_EVENTS = 1000

RECORDS: list[dict[str, Any]] = []


def stream_pieces(text: str, n: int) -> list[str]:
    """Split `text` into n consecutive pieces (by characters) whose concatenation is `text`."""
    n = max(1, n)
    q, r = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        k = q + (1 if i < r else 0)
        out.append(text[pos : pos + k])
        pos += k
    return out


# ---------------------------------------------------------------------------------------------------
# ASGI helpers


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            break
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            break
    return b"".join(chunks)


def _hdr_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin1"), v.encode("latin1")) for k, v in headers.items()]


async def _send(send: Send, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
    headers = {"content-type": ctype, "content-length": str(len(body)), **(extra or {})}
    await send({"type": "http.response.start", "status": status, "headers": _hdr_list(headers)})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, obj: Any, status: int = 200, extra: dict[str, str] | None = None) -> None:
    await _send(send, status, json.dumps(obj).encode(), "application/json", extra)


class Stream:
    """Chunked response whose pieces are flushed as they are produced."""

    def __init__(self, send: Send, delay: float) -> None:
        self.send, self.delay, self.started, self.count = send, delay, False, 0

    async def start(self, ctype: str, extra: dict[str, str] | None = None, status: int = 200) -> None:
        headers = {"content-type": ctype, "cache-control": "no-cache", **(extra or {})}
        await self.send({"type": "http.response.start", "status": status, "headers": _hdr_list(headers)})
        self.started = True

    async def chunk(self, data: bytes, paced: bool = False) -> None:
        """Send a chunk; `paced` chunks are the N timed events (a delay precedes every one but the first)."""
        if paced:
            if self.count:
                await asyncio.sleep(self.delay)
            self.count += 1
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": False})


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


class Req:
    def __init__(self, scope: Scope, body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.raw_query: str = scope["query_string"].decode("latin1")
        self.query = dict(urllib.parse.parse_qsl(self.raw_query, keep_blank_values=True))
        self.header_list = [(k.decode("latin1"), v.decode("latin1")) for k, v in scope["headers"]]
        self.headers = {k.lower(): v for k, v in self.header_list}
        self.host = self.headers.get("host", "").lower()
        if self.host.startswith("["):
            self.hostname = self.host.split("]")[0] + "]"
        else:
            self.hostname = self.host.rsplit(":", 1)[0] if ":" in self.host else self.host
        self.body = body
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = None
        self.json: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        try:
            self.events = int(self.headers.get("x-fake-events") or self.query.get("fake_events") or DEFAULT_EVENTS)
            self.delay = float(self.headers.get("x-fake-delay") or self.query.get("fake_delay") or DEFAULT_DELAY)
        except ValueError:
            self.events, self.delay = DEFAULT_EVENTS, DEFAULT_DELAY
        self.events = max(1, min(MAX_EVENTS, self.events))
        self.delay = max(0.0, min(10.0, self.delay))

    def record(self) -> dict[str, Any]:
        return {
            "time": time.time(),
            "host": self.hostname,
            "host_header": self.headers.get("host"),
            "method": self.method,
            "path": self.path,
            "query": self.raw_query,
            "headers": [[k, v] for k, v in self.header_list],
            "body_b64": base64.b64encode(self.body).decode(),
        }


# ---------------------------------------------------------------------------------------------------
# OpenAI (and OpenAI-compatible) handlers


def _oai_error(message: str, etype: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def _oai_headers() -> dict[str, str]:
    return {"x-request-id": "req_" + uuid.uuid4().hex, "openai-processing-ms": "5"}


async def openai_app(req: Req, send: Send) -> None:
    if req.path.startswith("/v1/") and "authorization" not in req.headers:
        return await _json(
            send,
            _oai_error("You didn't provide an API key. (fake provider)", code=None),
            401,
            _oai_headers(),
        )
    if req.method == "GET" and req.path == "/v1/models":
        now = int(time.time())
        models = ["gpt-4o-mini", "gpt-4.1", "gpt-image-1"]
        return await _json(
            send,
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": now, "owned_by": "openai"} for m in models],
            },
            extra=_oai_headers(),
        )
    if req.method == "POST" and req.path == "/v1/chat/completions":
        return await _chat_completions(req, send)
    if req.method == "POST" and req.path == "/v1/files":
        return await _json(send, {"id": "file-" + uuid.uuid4().hex[:24], "object": "file", "bytes": len(req.body),
                                  "created_at": int(time.time()), "filename": "upload", "purpose": "user_data"},
                           extra=_oai_headers())
    if req.method == "POST" and req.path == "/v1/responses":
        return await _responses(req, send)
    if req.method == "POST" and req.path == "/v1/images/generations":
        return await _json(
            send,
            {
                "created": int(time.time()),
                "data": [{"b64_json": base64.b64encode(_generated_image(req)).decode(), "revised_prompt": None}],
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 10,
                    "total_tokens": 15,
                    "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
                },
            },
            extra=_oai_headers(),
        )
    return await _json(send, _oai_error(f"Invalid URL ({req.method} {req.path})"), 404, _oai_headers())


def _echo(req: Req, default: str) -> str:
    """With `x-fake-echo: 1` the answer repeats the last user message (tests of placeholder restoration)."""
    if req.headers.get("x-fake-echo") != "1":
        return default
    messages = req.json.get("messages") or []
    content = messages[-1].get("content", "") if messages and isinstance(messages[-1], dict) else ""
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f"You said: {content}"


async def _chat_completions(req: Req, send: Send) -> None:
    model = str(req.json.get("model") or "gpt-4o-mini")
    answer = _echo(req, OPENAI_ANSWER)
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    usage = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    if not req.json.get("stream"):
        return await _json(
            send,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            extra=_oai_headers(),
        )

    def chunk(delta: dict[str, Any], finish: str | None = None, with_choice: bool = True) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if with_choice else [],
        }

    s = Stream(send, req.delay)
    await s.start("text/event-stream; charset=utf-8", _oai_headers())
    pieces = stream_pieces(answer, req.events)
    for i, piece in enumerate(pieces):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        await s.chunk(_sse(chunk(delta)), paced=True)
    await s.chunk(_sse(chunk({}, "stop")))
    if (req.json.get("stream_options") or {}).get("include_usage"):
        final = chunk({}, with_choice=False)
        final["usage"] = usage
        await s.chunk(_sse(final))
    await s.end(b"data: [DONE]\n\n")


async def _responses(req: Req, send: Send) -> None:
    model = str(req.json.get("model") or "gpt-4.1")
    rid = "resp_" + uuid.uuid4().hex
    mid = "msg_" + uuid.uuid4().hex
    created = int(time.time())

    def response(status: str, output: list[Any]) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "response",
            "created_at": created,
            "status": status,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "temperature": 1.0,
            "top_p": 1.0,
            "error": None,
            "incomplete_details": None,
            "instructions": req.json.get("instructions"),
            "metadata": {},
            "store": bool(req.json.get("store", True)),
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "usage": {
                "input_tokens": 9,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 8,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 17,
            }
            if status == "completed"
            else None,
        }

    def message(text: str, status: str) -> dict[str, Any]:
        return {
            "id": mid,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
            if text or status == "completed"
            else [],
        }

    if not req.json.get("stream"):
        return await _json(send, response("completed", [message(RESPONSES_ANSWER, "completed")]), extra=_oai_headers())

    seq = 0

    def ev(etype: str, **fields: Any) -> bytes:
        nonlocal seq
        obj = {"type": etype, "sequence_number": seq, **fields}
        seq += 1
        return _sse(obj, etype)

    s = Stream(send, req.delay)
    await s.start("text/event-stream; charset=utf-8", _oai_headers())
    await s.chunk(ev("response.created", response=response("in_progress", [])))
    await s.chunk(ev("response.in_progress", response=response("in_progress", [])))
    await s.chunk(ev("response.output_item.added", output_index=0, item=message("", "in_progress")))
    await s.chunk(
        ev(
            "response.content_part.added",
            item_id=mid,
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )
    )
    for piece in stream_pieces(RESPONSES_ANSWER, req.events):
        await s.chunk(
            ev(
                "response.output_text.delta",
                item_id=mid,
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            ),
            paced=True,
        )
    await s.chunk(
        ev(
            "response.output_text.done",
            item_id=mid,
            output_index=0,
            content_index=0,
            text=RESPONSES_ANSWER,
            logprobs=[],
        )
    )
    await s.chunk(
        ev(
            "response.content_part.done",
            item_id=mid,
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": RESPONSES_ANSWER, "annotations": []},
        )
    )
    done_msg = message(RESPONSES_ANSWER, "completed")
    await s.chunk(ev("response.output_item.done", output_index=0, item=done_msg))
    await s.end(ev("response.completed", response=response("completed", [done_msg])))


# ---------------------------------------------------------------------------------------------------
# Anthropic


def _ant_error(etype: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": "req_" + uuid.uuid4().hex[:24],
    }


async def anthropic_app(req: Req, send: Send) -> None:
    extra = {"request-id": "req_" + uuid.uuid4().hex[:24]}
    if "x-api-key" not in req.headers and "authorization" not in req.headers:
        return await _json(send, _ant_error("authentication_error", "x-api-key header is required"), 401, extra)
    if not (req.method == "POST" and req.path == "/v1/messages"):
        return await _json(send, _ant_error("not_found_error", f"Not found: {req.path}"), 404, extra)
    model = str(req.json.get("model") or "claude-sonnet-4-5")
    msg_id = "msg_" + uuid.uuid4().hex[:24]
    pieces = stream_pieces(ANTHROPIC_ANSWER, req.events)
    if not req.json.get("stream"):
        return await _json(
            send,
            {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": ANTHROPIC_ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 12,
                    "output_tokens": len(pieces),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
            extra=extra,
        )
    s = Stream(send, req.delay)
    await s.start("text/event-stream; charset=utf-8", extra)
    await s.chunk(
        _sse(
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 12,
                        "output_tokens": 1,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            },
            "message_start",
        )
    )
    await s.chunk(
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )
    )
    await s.chunk(_sse({"type": "ping"}, "ping"))
    for piece in pieces:
        await s.chunk(
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            ),
            paced=True,
        )
    await s.chunk(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    await s.chunk(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(pieces)},
            },
            "message_delta",
        )
    )
    await s.end(_sse({"type": "message_stop"}, "message_stop"))


# ---------------------------------------------------------------------------------------------------
# Gemini


def _gemini_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


async def gemini_app(req: Req, send: Send) -> None:
    if "x-goog-api-key" not in req.headers and "key" not in req.query and "authorization" not in req.headers:
        return await _json(
            send,
            _gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers. (fake)"),
            403,
        )
    path = req.path
    if req.method != "POST" or not path.startswith(("/v1beta/models/", "/v1/models/")) or ":" not in path:
        return await _json(send, _gemini_error(404, "NOT_FOUND", f"Not found: {path}"), 404)
    model_part, _, action = path.rpartition(":")
    model = model_part.rsplit("/", 1)[-1]

    def resp(text: str, final: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if final:
            cand["finishReason"] = "STOP"
        return {
            "candidates": [cand],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 7, "totalTokenCount": 15},
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:20],
        }

    if action == "generateContent":
        return await _json(send, resp(GEMINI_ANSWER, True))
    if action == "streamGenerateContent":
        pieces = stream_pieces(GEMINI_ANSWER, req.events)
        s = Stream(send, req.delay)
        if req.query.get("alt") == "sse":
            await s.start("text/event-stream")
            for i, piece in enumerate(pieces):
                await s.chunk(_sse(resp(piece, i == len(pieces) - 1)), paced=True)
            return await s.end()
        await s.start("application/json; charset=UTF-8")
        for i, piece in enumerate(pieces):
            prefix = b"[" if i == 0 else b",\r\n"
            await s.chunk(prefix + json.dumps(resp(piece, i == len(pieces) - 1)).encode(), paced=True)
        return await s.end(b"]")
    if action == "countTokens":
        return await _json(send, {"totalTokens": 8})
    return await _json(send, _gemini_error(404, "NOT_FOUND", f"Unknown action {action}"), 404)


# ---------------------------------------------------------------------------------------------------
# ElevenLabs


async def elevenlabs_app(req: Req, send: Send) -> None:
    if "xi-api-key" not in req.headers:
        return await _json(send, {"detail": {"status": "missing_api_key", "message": "Missing xi-api-key (fake)"}}, 401)
    parts = req.path.strip("/").split("/")
    # v1 / text-to-speech / {voice_id} [/stream]
    if req.method == "POST" and len(parts) >= 3 and parts[:2] == ["v1", "text-to-speech"]:
        extra = {"request-id": uuid.uuid4().hex}
        if len(parts) == 4 and parts[3] == "stream":
            s = Stream(send, req.delay)
            await s.start("audio/mpeg", extra)
            n = req.events
            size = -(-len(ELEVENLABS_AUDIO) // n)
            for i in range(n):
                await s.chunk(ELEVENLABS_AUDIO[i * size : (i + 1) * size] or b"\x00", paced=True)
            return await s.end()
        if len(parts) == 3:
            return await _send(send, 200, ELEVENLABS_AUDIO, "audio/mpeg", extra)
    return await _json(send, {"detail": {"status": "not_found", "message": f"Not found: {req.path}"}}, 404)


# ---------------------------------------------------------------------------------------------------
# Others


_MEDIA = {
    "/media/poster.png": Path(__file__).resolve().parents[2] / "config/demo/registry/ip/blue-meridian/poster.png",
    "/media/face.png": Path(__file__).resolve().parents[2] / "config/demo/registry/talent/eileen-collins/reference.png",
}


def _generated_image(req: Req) -> bytes:
    """What the fake "generates": `x-fake-image: face|poster|pattern-<seed>` (tests of output checks), else 1x1."""
    choice = req.headers.get("x-fake-image", "")
    if choice in ("face", "poster"):
        return _MEDIA[f"/media/{choice}.png"].read_bytes()
    if choice.startswith("pattern-"):
        return _pattern_png(choice.removeprefix("pattern-"))
    return PNG_1X1


def _pattern_png(seed: str) -> bytes:
    """A distinctive 512x384 picture made from `seed` (shapes and gradients; no two seeds alike)."""
    import hashlib
    import io
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - reproducible test pixels, not secrets
    image = Image.new("RGB", (512, 384), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(512), rng.randrange(384)
        box = (x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 160))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _landscape_png() -> bytes:
    """A plain generated picture (sky over a field) that matches nothing in any registry."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 200), (120, 170, 230))
    ImageDraw.Draw(image).rectangle((0, 120, 320, 200), fill=(70, 140, 60))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def example_org_app(req: Req, send: Send) -> None:
    if req.method in ("GET", "HEAD") and req.path in ("/", "/index.html"):
        return await _send(send, 200, EXAMPLE_ORG_HTML, "text/html; charset=UTF-8")
    if req.method == "GET" and req.path in _MEDIA:  # remote media a request can reference (image_url)
        return await _send(send, 200, _MEDIA[req.path].read_bytes(), "image/png")
    if req.method == "GET" and req.path == "/media/landscape.png":  # unregistered: nothing to find in it
        return await _send(send, 200, _landscape_png(), "image/png")
    if req.method == "GET" and req.path == "/media/redirect":
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", b"/media/landscape.png"), (b"content-length", b"0")]})
        return await send({"type": "http.response.body", "body": b""})
    return await _send(send, 404, b"<!doctype html><title>404</title>\n", "text/html; charset=UTF-8")


async def generic_app(req: Req, send: Send) -> None:
    if req.method in ("GET", "HEAD"):
        body = f"<!doctype html><title>{req.hostname}</title><p>fake {req.hostname}{req.path}</p>\n".encode()
        return await _send(send, 200, body, "text/html; charset=UTF-8")
    return await _json(send, {"ok": True, "host": req.hostname, "path": req.path, "fake": True})


async def mistral_app(req: Req, send: Send) -> None:
    if req.method == "POST" and req.path == "/v1/chat/completions":
        return await _chat_completions(req, send)
    return await generic_app(req, send)


HOSTS: dict[str, Callable[[Req, Send], Awaitable[None]]] = {
    "api.openai.com": openai_app,
    "api.anthropic.com": anthropic_app,
    "generativelanguage.googleapis.com": gemini_app,
    "api.elevenlabs.io": elevenlabs_app,
    "www.example.org": example_org_app,
    "api.mistral.ai": mistral_app,
    "chatgpt.com": generic_app,
    "claude.ai": generic_app,
    "gemini.google.com": generic_app,
    "api.stability.ai": generic_app,
    "api.dev.runwayml.com": generic_app,
}
CONTROL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


async def control_app(req: Req, send: Send) -> None:
    if req.path == "/__fake__/requests":
        if req.method == "GET":
            return await _json(send, RECORDS)
        if req.method == "DELETE":
            n = len(RECORDS)
            RECORDS.clear()
            return await _json(send, {"cleared": n})
    if req.path == "/__fake__/health":
        return await _json(send, {"ok": True, "records": len(RECORDS)})
    return await _json(send, {"error": "unknown control endpoint"}, 404)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        req = Req({**scope, "method": "WEBSOCKET"}, b"")
        RECORDS.append(req.record())
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo:" + (m.get("text") or "")})
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    req = Req(scope, body)
    if req.path.startswith("/__fake__/") and req.hostname in CONTROL_HOSTS:
        return await control_app(req, send)
    RECORDS.append(req.record())
    handler = HOSTS.get(req.hostname)
    if handler is None:
        return await _json(send, {"error": f"fake provider does not serve host {req.host!r}"}, 421)
    await handler(req, send)


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    a = p.parse_args()
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        ssl_certfile=a.cert,
        ssl_keyfile=a.key,
        log_level="warning",
        http="h11",
        ws="websockets-sansio" if _has_sansio() else "websockets",
        lifespan="off",
        timeout_keep_alive=30,
    )


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------
# Test-side helpers: run the fake as a subprocess and read what it recorded.


def free_port() -> int:
    """An ephemeral loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> bool:
    """True once host:port accepts TCP connections; False on timeout or when `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class FakeRecord:
    """One request as the fake provider received it."""

    host: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def header(self, name: str) -> str | None:
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query_params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)


class FakeProviderProcess:
    """`with FakeProviderProcess(pki) as fake:` runs the fake over TLS on a free loopback port."""

    def __init__(
        self,
        cert: str | Path,
        key: str | Path,
        ca: str | Path,
        port: int | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.cert, self.key, self.ca = str(cert), str(key), str(ca)
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/__fake__"

    def _client(self) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=self.ca)
        # trust_env=False: never send control traffic through an HTTPS_PROXY from the environment
        return httpx.Client(verify=ctx, timeout=10, trust_env=False, headers={"Host": "localhost"})

    def start(self) -> FakeProviderProcess:
        repo_root = Path(__file__).resolve().parents[2]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        out: Any = subprocess.PIPE
        if self.log_path:
            self._log = self.log_path.open("wb")
            out = self._log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--port",
                str(self.port),
                "--cert",
                self.cert,
                "--key",
                self.key,
            ],
            cwd=repo_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if not wait_for_port(self.port, 20, self.proc):
            self.stop()
            raise RuntimeError(f"fake provider did not start on {self.port}: {self.output()}")
        return self

    def output(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-5000:]
        if self.proc and self.proc.stdout and self.proc.poll() is not None:
            return self.proc.stdout.read().decode(errors="replace")[-5000:]
        return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> FakeProviderProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def raw_records(self) -> list[dict[str, Any]]:
        with self._client() as c:
            r = c.get(f"{self.control_url}/requests")
            r.raise_for_status()
            return list(r.json())

    def records(self, host: str | None = None) -> list[FakeRecord]:
        out = []
        for rec in self.raw_records():
            if host is not None and rec["host"] != host:
                continue
            out.append(
                FakeRecord(
                    rec["host"],
                    rec["method"],
                    rec["path"],
                    rec["query"],
                    [(k, v) for k, v in rec["headers"]],
                    base64.b64decode(rec["body_b64"]),
                    rec,
                )
            )
        return out

    def clear(self) -> None:
        with self._client() as c:
            c.delete(f"{self.control_url}/requests").raise_for_status()


if __name__ == "__main__":
    main()

"""Benchmark of gateway.content (not a test): decode throughput and memory under a bomb.

    .venv/bin/python bench/bench_content.py

Prints a table: MB/s for a chat JSON body (with plain `json.loads` of the same body as the
baseline, and the ratio) and for a multipart image upload, then the peak traced memory and time
for a 1 GiB gzip decompression bomb refused at the default cap.
"""

from __future__ import annotations

import base64
import io
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable

from PIL import Image

from gateway.content import ContentLimits, RequestContent, decode_body, extract_inputs
from gateway.errors import TooLargeError

MIB = 1024 * 1024
LIMITS = ContentLimits()


def chat_body() -> bytes:
    """A long chat: 400 turns of prose, a few tool calls, two inline images."""
    picture = io.BytesIO()
    Image.new("RGB", (256, 256), (30, 60, 90)).save(picture, "PNG")
    image_url = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    prose = "INT. HARBOUR - NIGHT. The fog rolls in as Mara checks the ledger again; nothing adds up. " * 6
    messages = [{"role": "system", "content": "You are a script assistant."}]
    for turn in range(400):
        messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": prose})
    messages.append({"role": "user", "content": [{"type": "text", "text": "compare"},
                                                  {"type": "image_url", "image_url": {"url": image_url}},
                                                  {"type": "image_url", "image_url": {"url": image_url}}]})
    return json.dumps({"model": "gpt-4o", "messages": messages, "temperature": 0.2}).encode()


def image_upload() -> tuple[bytes, str]:
    """A 2048×2048 photo-like JPEG plus a prompt, as OpenAI images/edits sends it."""
    picture = Image.effect_noise((2048, 2048), 64).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    boundary = "bench-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nmake it dusk\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="still.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def throughput(action: Callable[[], object], size: int, seconds: float = 2.0) -> float:
    """MB/s of `action` over at least `seconds` (after one warm-up run)."""
    action()
    runs = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or runs < 3:
        action()
        runs += 1
    return size * runs / elapsed / 1e6


def gzip_bomb(inflated: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = compressor.compress(b"\x00" * (64 * MIB)) + compressor.flush()
    return member * (inflated // (64 * MIB))


def bomb_cost(body: bytes, cap: int) -> tuple[float, float]:
    """(seconds, peak MiB) to refuse `body` with TooLargeError at `cap`."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        decode_body(body, "gzip", cap)
    except TooLargeError:
        pass
    else:
        raise SystemExit("the bomb was not refused")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / MIB
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    chat = chat_body()
    chat_request = RequestContent("POST", "/v1/chat/completions", body=chat, content_type="application/json")
    upload, upload_type = image_upload()
    upload_request = RequestContent("POST", "/v1/images/edits", body=upload, content_type=upload_type)

    rows = []
    baseline = throughput(lambda: json.loads(chat), len(chat))
    extracted = throughput(lambda: extract_inputs(chat_request, LIMITS), len(chat))
    rows.append(("chat JSON: json.loads (baseline)", len(chat), f"{baseline:8.1f} MB/s", ""))
    ratio = f"{baseline / extracted:.1f}x slower"
    rows.append(("chat JSON: extract_inputs", len(chat), f"{extracted:8.1f} MB/s", ratio))
    image_rate = throughput(lambda: extract_inputs(upload_request, LIMITS), len(upload))
    rows.append(("image upload (multipart JPEG)", len(upload), f"{image_rate:8.1f} MB/s", ""))

    bomb = gzip_bomb(1024 * MIB)
    seconds, peak = bomb_cost(bomb, LIMITS.max_decoded_bytes)
    rows.append((f"1 GiB gzip bomb, cap {LIMITS.max_decoded_bytes // MIB} MiB", len(bomb),
                 f"{seconds:8.2f} s", f"peak {peak:.0f} MiB"))
    seconds, peak = bomb_cost(bomb, 16 * MIB)
    rows.append(("1 GiB gzip bomb, cap 16 MiB", len(bomb), f"{seconds:8.2f} s", f"peak {peak:.0f} MiB"))

    print(f"{'case':44} {'input bytes':>12} {'result':>14}  note")
    for name, size, result, note in rows:
        print(f"{name:44} {size:12,d} {result:>14}  {note}")


if __name__ == "__main__":
    main()

"""The repo's fake provider (tests/support/fake_provider.py) for the streaming workloads of bench/run.py.

    python bench/stream_upstream.py --port P --cert leaf.pem --key leaf.key [--long-events N --long-delay S]

Two adjustments for clients that cannot choose the Host header or send x-fake-* headers (LiteLLM):
  * a request to 127.0.0.1 / localhost under /v1/ or /long/v1/ is answered as api.openai.com;
  * a path under /long/ is stripped of that prefix and streams --long-events events --long-delay
    apart (unless the request says otherwise), for the "500 open streams" workload.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

import fake_provider  # noqa: E402

LONG = {"events": 200, "delay": 0.25}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        path: str = scope["path"]
        headers = [(k, v) for k, v in scope["headers"]]
        host = next((v for k, v in headers if k == b"host"), b"").decode("latin1").rsplit(":", 1)[0]
        if host in ("127.0.0.1", "localhost") and path.startswith(("/v1/", "/long/v1/")):
            headers = [(k, v) for k, v in headers if k != b"host"] + [(b"host", b"api.openai.com")]
            if path.startswith("/long/"):
                path = path[len("/long"):]
                names = {k for k, _ in headers}
                if b"x-fake-events" not in names:
                    headers.append((b"x-fake-events", str(LONG["events"]).encode()))
                if b"x-fake-delay" not in names:
                    headers.append((b"x-fake-delay", str(LONG["delay"]).encode()))
            scope = {**scope, "path": path, "raw_path": path.encode(), "headers": headers}
        # The benchmark never reads the recorded requests: keep memory flat over long runs.
        fake_provider.RECORDS.clear()
    await fake_provider.app(scope, receive, send)


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--long-events", type=int, default=LONG["events"])
    p.add_argument("--long-delay", type=float, default=LONG["delay"])
    a = p.parse_args()
    LONG.update(events=a.long_events, delay=a.long_delay)
    uvicorn.run(app, host="127.0.0.1", port=a.port, ssl_certfile=a.cert, ssl_keyfile=a.key, log_level="warning",
                http="h11", lifespan="off", timeout_keep_alive=60, backlog=2048)


if __name__ == "__main__":
    main()

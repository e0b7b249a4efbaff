"""A data dir with a realistic audit trail for the review UI tests (unit and browser).

Events go through the real AuditStore and their inputs through the real vault; holds through the
real ApprovalStore. Nothing is faked but the traffic itself.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from gateway.approvals import open_approvals
from gateway.audit import AuditEvent, Outcome, new_event_id, open_store
from gateway.config import load_config
from gateway.config.models import Action, GatewayConfig
from gateway.decision import Decision, Reason, RewriteRecord
from gateway.vault import Vault, master_key_provider

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo"
PROMPT = "Summarise the interview with Jane Roe, jane.roe@example.com, for episode 3."
BOB_PROMPT = "Rewrite the cold open for the harbour scene."


def demo_config() -> GatewayConfig:
    return load_config(DEMO).config


def png_bytes() -> bytes:
    image = Image.new("RGB", (64, 48), (40, 90, 160))
    for x in range(64):
        image.putpixel((x, 24), (250, 200, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def wav_bytes(seconds: float = 0.4, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Seeded:
    data_dir: Path
    held_event: str = ""
    held_approval: str = ""
    held_prints: tuple[str, ...] = ()
    media_event: str = ""
    harbor_event: str = ""
    harbor_approval: str = ""
    events: list[str] = field(default_factory=list)


def _event(
    user: str, production: str, tool: str, action: Action, reasons: list[Reason], ts: float, digests=(), **kw
) -> AuditEvent:
    host = {"openai-api": "api.openai.com", "anthropic-api": "api.anthropic.com",
            "elevenlabs-api": "api.elevenlabs.io", "gemini-api": "generativelanguage.googleapis.com"}[tool]  # fmt: skip
    return AuditEvent(
        id=new_event_id(int(ts * 1000)),
        ts=ts,
        user=user,
        production=production,
        tool=tool,
        endpoint=kw.pop("endpoint", "chat.completions"),
        capability=kw.pop("capability", "chat"),
        method="POST",
        host=host,
        path=kw.pop("path", "/v1/chat/completions"),
        mode="proxy",
        client="127.0.0.1",
        decision=Decision(action, tuple(reasons)) if reasons else Decision.allow(),
        input_digests=tuple(digests),
        request_bytes=kw.pop("request_bytes", 512),
        **kw,
    )


def seed(data_dir: Path, config: GatewayConfig | None = None, now: float | None = None) -> Seeded:
    """Twenty-odd events over the last few days, two of them held, one with image and audio inputs."""
    config = config or demo_config()
    now = time.time() if now is None else now
    data_dir.mkdir(parents=True, exist_ok=True)
    out = Seeded(data_dir)
    store = open_store(data_dir, config.settings.audit, replica_id="test-gateway")
    vault = Vault(master_key_provider(data_dir), store)
    approvals = open_approvals(data_dir, config, webhooks=False)
    try:
        rewrite = (RewriteRecord("openai.store_off", "body.store", "set"),)
        for i in range(18):
            ts = now - (i % 6) * 86400 - i * 600 - 3600
            user, production, tool = [
                ("alice", "northern-lights", "openai-api"),
                ("alice", "northern-lights", "anthropic-api"),
                ("bob", "harbor-nights", "openai-api"),
                ("bob", "harbor-nights", "elevenlabs-api"),
            ][i % 4]
            reasons: list[Reason] = []
            action = Action.ALLOW
            if i % 5 == 1:
                action, reasons = (
                    Action.REDACT,
                    [Reason("pii.email", Action.REDACT, entity="email", location="body.messages[0].content")],
                )
            elif i % 7 == 2:
                action, reasons = Action.NOTIFY, [Reason("tool.unlisted_endpoint", Action.NOTIFY)]
            if production == "harbor-nights" and action is Action.ALLOW and i % 3 == 0:
                action, reasons = (
                    Action.NOTIFY,
                    [
                        Reason(
                            "likeness.consented",
                            Action.NOTIFY,
                            entity="eileen-collins",
                            message="consent HN-CONSENT-2026-014",
                        )
                    ],
                )
            text = f"request {i}: {BOB_PROMPT if user == 'bob' else 'research notes'}".encode()
            event = _event(user, production, tool, action, reasons, ts, [sha(text)], rewrites=rewrite)
            capture = vault.seal(event.id, production, "text", "body.messages[0].content", "text/plain", text)
            store.record(event, [capture])
            store.complete(event, Outcome(200, 850.0, 2048, False, input_tokens=120, output_tokens=300))
            out.events.append(event.id)
        # a gemini request blocked outright
        unapproved = Reason("tool.unapproved", Action.BLOCK, message="gemini-api is not approved")
        blocked = _event("alice", "northern-lights", "gemini-api", Action.BLOCK, [unapproved], now - 7200)
        store.record(blocked)
        out.events.append(blocked.id)
        # the hold: alice's prompt with an e-mail address, for written approval
        prompt = PROMPT.encode()
        held_ts = now - 1800
        event_id = new_event_id(int(held_ts * 1000))
        approval = approvals.request_hold(
            event_id, "northern-lights", "alice", "pii.email", "openai-api", "chat", (sha(prompt),),
            "pii.email at body.messages[0].content",
        )  # fmt: skip
        held = _event(
            "alice", "northern-lights", "openai-api", Action.HOLD,
            [Reason("pii.email", Action.HOLD, entity="email", location="body.messages[0].content", score=0.99,
                    detector="pii.pattern", message="personal data needs written approval")],
            held_ts, [sha(prompt)], approval_id=approval.id,
        )  # fmt: skip
        held = AuditEvent(**{**{f: getattr(held, f) for f in held.__slots__}, "id": event_id})
        store.record(
            held, [vault.seal(event_id, "northern-lights", "text", "body.messages[0].content", "text/plain", prompt)]
        )
        store.complete(held, Outcome(403, 3.0, 300, False))
        out.held_event, out.held_approval, out.held_prints = event_id, approval.id, (sha(prompt),)
        out.events.append(event_id)
        # a harbor-nights hold with an image and audio (likeness)
        image, audio = png_bytes(), wav_bytes()
        media_ts = now - 900
        media_id = new_event_id(int(media_ts * 1000))
        harbor = approvals.request_hold(
            media_id, "harbor-nights", "bob", "likeness.face", "openai-api", "image_edit", (sha(image), sha(audio)),
            "likeness.face (blue-meridian poster match) at multipart:image",
        )  # fmt: skip
        media = _event(
            "bob", "harbor-nights", "openai-api", Action.HOLD,
            [Reason("likeness.face", Action.HOLD, entity="eileen-collins", location="multipart:image", score=0.91,
                    detector="face")],
            media_ts, [sha(image), sha(audio)], approval_id=harbor.id, endpoint="images.edits", capability="image_edit",
            path="/v1/images/edits",
        )  # fmt: skip
        media = AuditEvent(**{**{f: getattr(media, f) for f in media.__slots__}, "id": media_id})
        store.record(media, [
            vault.seal(media_id, "harbor-nights", "media", "multipart:image", "image/png", image),
            vault.seal(media_id, "harbor-nights", "media", "multipart:audio", "audio/wav", audio),
        ])  # fmt: skip
        out.media_event, out.harbor_event, out.harbor_approval = media_id, media_id, harbor.id
        out.events.append(media_id)
    finally:
        approvals.close()
        store.close()
    return out

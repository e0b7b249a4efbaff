"""`greenroom policy explain`: what the gateway would decide, and why, without sending anything.

Production leads use it to test their configuration: files and a prompt are inspected exactly as a
request to the chosen tool and endpoint would be (decoders, detectors, the production's consents,
licences and personal-data rules), and every reason is printed. With redaction, the text that would
be sent is shown.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

from gateway.config import load_config
from gateway.config.models import Capability, Role
from gateway.errors import ConfigError
from gateway.identity import Principal
from gateway.inspection import HttpRequest, inspect_request
from gateway.policy import access_reasons
from gateway.redact import redact_text
from gateway.runtime import Generation

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("policy", help="explain what the production's policy decides")
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    explain = sub.add_parser("explain", help="inspect files and a prompt as a request would be; send nothing")
    explain.add_argument("--config", type=Path, required=True, help="configuration directory")
    explain.add_argument("--production", required=True, help="production id")
    explain.add_argument("--file", action="append", default=[], type=Path, help="a file to attach (repeatable)")
    explain.add_argument("--prompt", default="", help="the prompt text")
    explain.add_argument("--tool", default="openai-api", help="tool id (default openai-api)")
    explain.add_argument("--capability", choices=[c.value for c in Capability], default="chat",
                         help="what the request does (default chat; e.g. image_generation, voice_clone)")
    explain.add_argument("--data-dir", type=Path, default=Path("var"),
                         help="where the registry index is kept (built if missing; default ./var)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(handler=_explain)


_ENDPOINTS = {
    "chat": "/v1/chat/completions",
    "image_generation": "/v1/images/generations",
    "image_edit": "/v1/images/edits",
    "video": "/v1/videos",
    "text_to_speech": "/v1/audio/speech",
    "speech_to_text": "/v1/audio/transcriptions",
}


def _explain(args: argparse.Namespace) -> int:
    loaded = load_config(args.config)
    generation = Generation.build(1, loaded, args.data_dir)
    production = generation.productions.get(args.production)
    if production is None:
        raise ConfigError(f"production {args.production!r} is not defined; see {args.config}/productions/")
    tool = next((t for t in generation.catalog.tools if t.id == args.tool), None)
    if tool is None:
        raise ConfigError(f"tool {args.tool!r} is not in the catalog (`greenroom tools list`)")
    capability = Capability(args.capability)
    body = _body(args.prompt, args.file, capability)
    host = next(h for h in tool.hosts if not h.startswith("*."))
    path = _ENDPOINTS.get(capability.value, "/v1/chat/completions")
    classification = generation.catalog.classify(host, "POST", path)
    assert classification is not None
    classification = type(classification)(classification.tool, classification.endpoint, capability)
    principal = Principal("explain", Role.STAFF, production.id, "proxy_auth")
    access = access_reasons(principal, production, classification, "POST")
    request = HttpRequest("POST", host, path, (("content-type", "application/json"),), json.dumps(body).encode())
    detection = generation.detection
    assert detection is not None
    inspection = inspect_request(
        request, classification, production, access, loaded.config.settings.limits,
        findings=lambda inputs: detection.reasons(inputs, production, capability),
    )
    _print(args.format, inspection, production.id, tool.id, capability.value)
    return 0


def _body(prompt: str, files: list[Path], capability: Capability) -> dict[str, Any]:
    if capability != Capability.CHAT:
        return {"prompt": prompt, "images": [_data_url(f) for f in files]}
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}] if prompt else []
    for file in files:
        parts.append({"type": "image_url", "image_url": {"url": _data_url(file)}})
    return {"model": "explain", "messages": [{"role": "user", "content": parts or prompt}]}


def _data_url(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from exc
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _print(fmt: str, inspection: Any, production: str, tool: str, capability: str) -> None:
    decision = inspection.decision
    redacted = [redact_text(inspection.redaction, t) for t in inspection.inputs.texts
                if inspection.redaction is not None and inspection.redaction.at(t.location)]
    if fmt == "json":
        json.dump({"production": production, "tool": tool, "capability": capability,
                   "decision": decision.action.value, "reasons": [r.as_dict() for r in decision.reasons],
                   "redacted_text": redacted}, sys.stdout, indent=2)
        print()
        return
    print(f"production {production}, tool {tool}, {capability}: {decision.action.value.upper()}")
    for reason in decision.reasons:
        where = f" at {reason.location}" if reason.location else ""
        entity = f" [{reason.entity}]" if reason.entity else ""
        print(f"  {reason.action.value:<7} {reason.rule}{entity}{where}: {reason.message}")
    if not decision.reasons:
        print("  no findings")
    for text in redacted:
        print(f"  would send: {text}")

"""Likeness, IP and personal data through the real gateway with the demo registry and the official SDK."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import REPO_ROOT, GatewayProcess, greenroom_bin

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-demo")  # northern-lights: documentary, no consents, holds personal data
BOB = ("bob", "bob-demo")  # harbor-nights: Eileen Collins' likeness consent; redacts personal data and secrets
REGISTRY = REPO_ROOT / "config" / "demo" / "registry"
FACE = REGISTRY / "talent" / "eileen-collins" / "reference.png"
POSTER = REGISTRY / "ip" / "blue-meridian" / "poster.png"


def sdk(gw: GatewayProcess, user: tuple[str, str], **headers: str) -> openai.OpenAI:
    http_client = httpx.Client(proxy=gw.proxy_url_for(*user), verify=ssl.create_default_context(cafile=gw.ca_cert),
                               trust_env=False, timeout=60)
    return openai.OpenAI(api_key="sk-test", http_client=http_client, max_retries=0, default_headers=headers)


def image_message(path: Any) -> list[dict[str, Any]]:
    data = base64.b64encode(path.read_bytes()).decode()
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]}]


def events(gw: GatewayProcess) -> list[dict[str, Any]]:
    out = subprocess.run([greenroom_bin(), "audit", "export", "--data-dir", str(gw.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_talent_photo_without_consent_is_blocked(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway, ALICE).chat.completions.create(model="gpt-4o", messages=image_message(FACE))
    assert "likeness.face" in str(refused.value)
    assert not fake.records("api.openai.com")


def test_talent_photo_with_consent_is_allowed_and_notified(
    gateway: GatewayProcess, fake: FakeProviderProcess
) -> None:
    answer = sdk(gateway, BOB).chat.completions.create(model="gpt-4o", messages=image_message(FACE))
    assert answer.choices[0].message.content
    event = next(e for e in reversed(events(gateway)) if e["user"] == "bob" and e["endpoint"] == "chat.completions")
    assert event["decision"] == "notify"
    face = next(r for r in event["reasons"] if r["rule"] == "likeness.face")
    assert face["entity"] == "eileen-collins" and "consent on file" in face["message"]


@pytest.mark.parametrize("user", [ALICE, BOB])
def test_unlicensed_poster_is_blocked(
    gateway: GatewayProcess, fake: FakeProviderProcess, user: tuple[str, str]
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway, user).chat.completions.create(model="gpt-4o", messages=image_message(POSTER))
    assert "ip.image" in str(refused.value)
    assert not fake.records("api.openai.com")


def test_names_in_a_generation_prompt_are_held(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway, ALICE).images.generate(model="gpt-image-1", prompt="Ei1een Co11ins as Captain Ysolde Varga")
    message = str(refused.value)
    assert "likeness.name" in message and "ip.reference" in message and "documentary.synthetic_person" in message
    assert refused.value.response.headers["X-Greenroom-Decision"] == "hold"


SECRET = "Email mara@example.com about Project Lantern; Mara Quell calls +1 415 555 0100."


def test_personal_data_and_secrets_are_redacted_and_restored(gateway: GatewayProcess,
                                                              fake: FakeProviderProcess) -> None:
    """harbor-nights redacts: the provider sees placeholders, the SDK gets the values back."""
    answer = sdk(gateway, BOB, **{"x-fake-echo": "1"}).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": SECRET}])
    sent = fake.records("api.openai.com")[-1].body.decode()
    for value in ("mara@example.com", "Project Lantern", "Mara Quell", "555 0100"):
        assert value not in sent
    assert "[EMAIL_1]" in sent and "[TITLE_1]" in sent
    assert answer.choices[0].message.content == f"You said: {SECRET}"


def test_streamed_answers_are_restored(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """Placeholders split across streamed events are restored in the SDK's stream."""
    stream = sdk(gateway, BOB, **{"x-fake-echo": "1", "x-fake-events": "23", "x-fake-delay": "0.01"}) \
        .chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SECRET}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"You said: {SECRET}"


def test_documentary_holds_personal_data(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway, ALICE).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SECRET}])
    assert "pii.email" in str(refused.value)
    assert refused.value.response.headers["X-Greenroom-Decision"] == "hold"
    assert not fake.records("api.openai.com")


@pytest.mark.parametrize(
    "prompt",
    ["Eileen%20Collins as the lead", "&#69;ileen Collins as the lead", "Eileen&nbsp;Collins as the lead",
     "Eileen\\u0020Collins as the lead", "%2545ileen%2520Collins as the lead"],
    ids=["percent-escaped", "html character reference", "html entity", "backslash-u escape", "escaped twice"],
)
def test_escaped_names_are_read_as_a_model_reads_them(
    gateway: GatewayProcess, fake: FakeProviderProcess, prompt: str
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway, ALICE).images.generate(model="gpt-image-1", prompt=prompt)
    assert "likeness.name" in str(refused.value)
    assert not fake.records("api.openai.com")


def test_redaction_still_works_beside_an_escape(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """Text with an escape in it (`R&amp;D`) gets an unescaped copy for the detectors; what is found in
    both is redacted in the text as sent, not refused as unredactable."""
    secret = "Email mara@example.com about R&amp;D on Project Lantern."
    answer = sdk(gateway, BOB, **{"x-fake-echo": "1"}).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": secret}])
    sent = fake.records("api.openai.com")[-1].body.decode()
    assert "mara@example.com" not in sent and "[EMAIL_1]" in sent and "R&amp;D" in sent
    assert answer.choices[0].message.content == f"You said: {secret}"


@pytest.mark.parametrize(
    "content",
    ["write to mara%40example.com today", "write to ann@example.com and mara%40example.com today"],
    ids=["escaped alone", "escaped beside a plain one"],
)
def test_personal_data_only_an_escape_hides_is_not_sent(
    gateway: GatewayProcess, fake: FakeProviderProcess, content: str
) -> None:
    """An e-mail address written `mara%40example.com` cannot be redacted in place: it is refused,
    also when another address in the same text could have been."""
    before = len(fake.records("api.openai.com"))
    with pytest.raises(openai.APIStatusError) as refused:
        sdk(gateway, BOB).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])
    assert refused.value.response.headers["X-Greenroom-Decision"] == "block"
    assert len(fake.records("api.openai.com")) == before

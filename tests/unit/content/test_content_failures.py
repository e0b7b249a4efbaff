"""Fail closed: what cannot be decoded is uninspectable, and errors never echo content."""

from __future__ import annotations

import json

import pytest
from content_samples import b64, encrypted_pdf, encrypted_zip, multipart_body, png, zip_of

from gateway.content import ContentLimits, RequestContent, extract_inputs, extract_websocket_inputs
from gateway.errors import InspectionError, TooDeepError, TooLargeError, UninspectableError

LIMITS = ContentLimits()
SECRET = "Night Harbor draft scene 12"


def raw(body: bytes, content_type: str) -> RequestContent:
    return RequestContent("POST", "/", body=body, content_type=content_type)


def form(data: bytes, name: str = "file", content_type: str | None = None, extra: dict | None = None) -> RequestContent:
    body, content_type_header = multipart_body([(name, "f.bin", content_type, data, extra or {})])
    return raw(body, content_type_header)


UNINSPECTABLE = [
    pytest.param(form(encrypted_zip({"secret.txt": SECRET.encode()})), id="password-zip"),
    pytest.param(form(encrypted_pdf(SECRET)), id="password-pdf"),
    pytest.param(form(b"7z\xbc\xaf\x27\x1c" + b"\x00" * 32), id="7z"),
    pytest.param(form(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 32), id="rar"),
    pytest.param(form(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504), id="legacy-ole-doc"),
    pytest.param(form(bytes(range(256)) * 4), id="unrecognised-binary"),
    pytest.param(form(png()[:40]), id="truncated-png"),
    pytest.param(form(b"%PDF-1.7\n garbage"), id="garbage-pdf"),
    pytest.param(form(b"PK\x03\x04" + b"\x00" * 60), id="garbage-zip"),
    pytest.param(form(b"<svg><image href='x'/>", content_type="image/svg+xml"), id="malformed-svg"),
    pytest.param(
        form(b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><svg>&a;</svg>'), id="svg-with-entities"
    ),
    pytest.param(form(b"@@@", extra={"Content-Transfer-Encoding": "uuencode"}), id="unknown-transfer-encoding"),
    pytest.param(raw(b'{"messages": [', "application/json"), id="truncated-json"),
    pytest.param(raw(b'{"a": NaN}', "application/json"), id="json-nan"),
    pytest.param(raw(b"--x\r\nbroken", "multipart/form-data"), id="multipart-without-boundary"),
    pytest.param(raw(b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",
                     "multipart/form-data; boundary=x"), id="multipart-unterminated"),
    pytest.param(
        raw(json.dumps({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]})
            .encode(), "application/json"),
        id="inline-data-not-base64",
    ),
    pytest.param(raw(json.dumps({"u": "data:image/png;base64,@@@@"}).encode(), "application/json"),
                 id="data-url-not-base64"),
    pytest.param(raw(b"\x00\x01\x02" * 100, "application/octet-stream"), id="opaque-upload"),
]


@pytest.mark.parametrize("request_content", UNINSPECTABLE)
def test_what_cannot_be_decoded_is_uninspectable(request_content: RequestContent) -> None:
    with pytest.raises(UninspectableError) as raised:
        extract_inputs(request_content, LIMITS)
    assert raised.value.rule == "content.uninspectable"
    assert SECRET not in str(raised.value)


OVER_LIMITS = [
    pytest.param(raw(b"x" * 2000, "text/plain"), ContentLimits(max_decoded_bytes=1000), TooLargeError, id="body-size"),
    pytest.param(raw(json.dumps([SECRET] * 50).encode(), "application/json"), ContentLimits(max_items=10),
                 TooLargeError, id="items"),
    pytest.param(form(zip_of({f"{i}.txt": SECRET.encode() for i in range(20)})), ContentLimits(max_archive_members=10),
                 TooLargeError, id="archive-members"),
    pytest.param(raw(json.dumps({"img": b64(png())}).encode(), "application/json"), ContentLimits(max_base64_bytes=10),
                 TooLargeError, id="base64-item"),
    pytest.param(raw(json.dumps({"a": {"b": {"c": {"d": 1}}}}).encode(), "application/json"),
                 ContentLimits(max_json_depth=3), TooDeepError, id="json-depth"),
    pytest.param(raw(json.dumps({"a": json.dumps({"b": json.dumps({"c": json.dumps({"d": SECRET})})})}).encode(),
                     "application/json"),
                 ContentLimits(max_archive_depth=2), TooDeepError, id="json-in-string-depth"),
    pytest.param(form(png((300, 300))), ContentLimits(max_image_pixels=10_000), TooLargeError, id="image-pixels"),
]


@pytest.mark.parametrize(("request_content", "limits", "error"), OVER_LIMITS)
def test_past_a_limit_is_too_large_or_too_deep(
    request_content: RequestContent, limits: ContentLimits, error: type[InspectionError]
) -> None:
    with pytest.raises(error) as raised:
        extract_inputs(request_content, limits)
    assert SECRET not in str(raised.value)


def test_parsed_json_from_the_caller_is_used() -> None:
    """The caller's ParsedJson (e.g. with shadowed values) is walked instead of re-parsing the body."""
    from gateway.content import parse_json

    body = b'{"prompt": "a", "prompt": "' + SECRET.encode() + b'"}'
    inputs = extract_inputs(
        RequestContent("POST", "/", body=body, content_type="application/json", parsed_json=parse_json(body, 64)),
        LIMITS,
    )
    assert {(t.location, t.text) for t in inputs.texts} == {("body.prompt", SECRET), ("body.$shadowed[0]", "a")}


def test_a_pdf_encrypted_without_a_user_password_is_read() -> None:
    """Permissions-only encryption (empty user password) hides nothing from a reader: it is inspected."""
    import io

    from content_samples import pdf_with_text
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(pdf_with_text(SECRET)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    inputs = extract_inputs(form(buffer.getvalue()), LIMITS)
    assert any(SECRET in item.text for item in inputs.texts)


def test_websocket_binary_garbage_is_uninspectable() -> None:
    with pytest.raises(UninspectableError):
        extract_websocket_inputs(b"\x00\xff" * 64, False, LIMITS)


def test_plain_text_that_looks_like_json_is_still_text() -> None:
    inputs = extract_inputs(raw(json.dumps({"t": "[citation needed] {sic}"}).encode(), "application/json"), LIMITS)
    assert [t.text for t in inputs.texts] == ["[citation needed] {sic}"]

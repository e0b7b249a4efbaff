"""Channels × carriers: the same image, audio and text found wherever a request can hide it.

Each row sends one carrier through one channel and asserts the item is found with the sniffed
type (never the declared one) at the expected location.
"""

from __future__ import annotations

import base64
import json
import struct

import pytest
from content_samples import (
    b64,
    b64_urlsafe_unpadded,
    b64_wrapped,
    docx,
    encoded_audio,
    html_with,
    multipart_body,
    pcm16,
    pdf_with_image,
    png,
    pptx,
    rtf_with,
    svg_with,
    tar_of,
    wav,
    zip_of,
)

from gateway.content import (
    ContentLimits,
    Inputs,
    RequestContent,
    extract_inputs,
    extract_websocket_inputs,
)

LIMITS = ContentLimits()
PNG = png()
SECRET_TEXT = "Night Harbor draft scene 12"


def json_request(body: object, path: str = "/v1/chat/completions") -> RequestContent:
    return RequestContent("POST", path, body=json.dumps(body).encode(), content_type="application/json")


def raw_request(body: bytes, content_type: str) -> RequestContent:
    return RequestContent("POST", "/upload", body=body, content_type=content_type)


def form_request(parts: list, boundary: str = "----greenroom-test") -> RequestContent:
    body, content_type = multipart_body(parts, boundary)
    return RequestContent("POST", "/v1/images/edits", body=body, content_type=content_type)


def media_at(inputs: Inputs, location: str) -> list[str]:
    return [item.sniffed_type for item in inputs.media if item.location == location]


IMAGE_CARRIERS = [
    pytest.param(
        json_request({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
        ]}]}),
        "body.messages[0].content[1].image_url.url",
        id="openai-chat-data-url",
    ),
    pytest.param(
        json_request({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(PNG)}},
        ]}]}, "/v1/messages"),
        "body.messages[0].content[0].source.data",
        id="anthropic-base64-source-declared-jpeg",
    ),
    pytest.param(
        json_request({"input": {"image": b64_urlsafe_unpadded(PNG)}}, "/v1/predictions"),
        "body.input.image",
        id="urlsafe-unpadded-bare-base64",
    ),
    pytest.param(
        json_request({"input": {"image": b64_wrapped(PNG)}}, "/v1/predictions"),
        "body.input.image",
        id="line-wrapped-bare-base64",
    ),
    pytest.param(
        json_request({"input": {"image": " ".join(b64(PNG)[i : i + 10] for i in range(0, len(b64(PNG)), 10))}}),
        "body.input.image",
        id="base64-with-spaces",
    ),
    pytest.param(
        json_request({"promptImage": f"DATA:IMAGE/JPEG;Name=x.png;CHARSET=binary;BASE64,{b64(PNG)}"}),
        "body.promptImage",
        id="data-url-upper-case-with-parameters",
    ),
    pytest.param(
        json_request({"prompt": f"look at this {b64(PNG)} and describe it"}),
        "body.prompt@13",
        id="bare-base64-inside-prose",
    ),
    pytest.param(
        json_request({"prompt": f"![poster](data:image/png;base64,{b64(PNG)}) what is it?"}),
        "body.prompt@10",
        id="data-url-inside-markdown",
    ),
    pytest.param(
        json_request({"contents": [{"parts": [
            {"text": "describe"}, {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}},
        ]}]}, "/v1beta/models/gemini:generateContent"),
        "body.contents[0].parts[1].inlineData.data",
        id="gemini-inlineData-camelCase",
    ),
    pytest.param(
        json_request({"contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": b64(PNG)}}]}]}),
        "body.contents[0].parts[0].inline_data.data",
        id="gemini-inline_data-snake_case",
    ),
    pytest.param(
        json_request({"labels": json.dumps({"ref": f"data:image/png;base64,{b64(PNG)}"})}),
        "body.labels.$json.ref",
        id="json-inside-a-string",
    ),
    pytest.param(
        RequestContent("POST", "/v1/chat/completions", content_type="application/json",
                       body=b'{"image": "data:image/png;base64,' + b64(PNG).encode() + b'", "image": "cat"}'),
        "body.$shadowed[0]",
        id="shadowed-by-duplicate-key",
    ),
    pytest.param(
        raw_request(f"prompt=hi&image={base64.b64encode(PNG).decode().replace('+', '%2B')}".encode(),
                    "application/x-www-form-urlencoded"),
        "form.image",
        id="urlencoded-field",
    ),
    pytest.param(form_request([("image", "a.png", "image/jpeg", PNG, {})]), "form.image", id="multipart-file"),
    pytest.param(
        form_request([("image[]", "a.png", "image/png", PNG, {}), ("image[]", "b.png", "image/png", PNG, {})]),
        "form.image[][1]",
        id="multipart-repeated-field",
    ),
    pytest.param(
        form_request([("image", "a.png", "image/png", b64_wrapped(PNG).encode(),
                       {"Content-Transfer-Encoding": "base64"})]),
        "form.image",
        id="multipart-transfer-encoding-base64",
    ),
    pytest.param(
        form_request([("image", "a.png", "image/png", PNG, {})], boundary="'()+_,-./:=? odd boundary"),
        "form.image",
        id="multipart-odd-legal-boundary",
    ),
    pytest.param(
        form_request([("file", "refs.zip", "application/zip", zip_of({"stills/pic.png": PNG}), {})]),
        "archive:form.file/stills/pic.png",
        id="zip-inside-multipart",
    ),
    pytest.param(
        form_request([("file", "outer.zip", "application/zip",
                       zip_of({"inner.zip": zip_of({"pic.png": PNG})}), {})]),
        "archive:form.file/inner.zip/pic.png",
        id="zip-inside-zip",
    ),
    pytest.param(
        form_request([("file", "refs.tgz", "application/gzip", tar_of({"pic.png": PNG}), {})]),
        "archive:form.file/(decompressed)/pic.png",
        id="tar-gz",
    ),
    pytest.param(
        form_request([("file", "s.docx", "application/octet-stream", docx(SECRET_TEXT, PNG), {})]),
        "archive:form.file/word/media/image1.png",
        id="docx",
    ),
    pytest.param(
        form_request([("file", "s.pptx", None, pptx(SECRET_TEXT, PNG), {})]),
        "archive:form.file/ppt/media/image1.png",
        id="pptx",
    ),
    pytest.param(raw_request(svg_with(PNG, "logo"), "image/svg+xml"), "body#attr[0]", id="svg-data-url-href"),
    pytest.param(raw_request(html_with(PNG, "hi"), "text/html"), "body#attr[0]", id="html-img-src"),
    pytest.param(raw_request(rtf_with(PNG, "hi"), "application/rtf"), "body/image[0]", id="rtf-pict"),
    pytest.param(raw_request(PNG, "image/jpeg"), "body", id="raw-upload-declared-wrong"),
    pytest.param(
        json_request({"input": [{"type": "image", "mime_type": "image/webp", "data": b64(PNG)}]},
                     "/v1beta/interactions"),
        "body.input[0].data",
        id="gemini-interactions-image",
    ),
    pytest.param(
        RequestContent("POST", "/v1/batches", content_type="application/x-ndjson",
                       body=b'{"custom_id": "1"}\n' + json.dumps({"body": {"image": b64(PNG)}}).encode()),
        "body.line[1].body.image",
        id="jsonl-batch-line",
    ),
    pytest.param(
        json_request({"input": [{"role": "user", "content": [
            {"type": "input_file", "filename": "a.zip",
             "file_data": f"data:application/zip;base64,{b64(zip_of({'p.png': PNG}))}"}]}]}, "/v1/responses"),
        "archive:body.input[0].content[0].file_data/p.png",
        id="responses-input-file-zip",
    ),
]


@pytest.mark.parametrize(("request_content", "location"), IMAGE_CARRIERS)
def test_a_png_is_found_in_every_carrier(request_content: RequestContent, location: str) -> None:
    """The PNG is found, sniffed as PNG whatever was declared, at the location where it sat."""
    inputs = extract_inputs(request_content, LIMITS)
    assert media_at(inputs, location) == ["image/png"], [(m.location, m.sniffed_type) for m in inputs.media]


def test_an_image_inside_a_pdf_is_found() -> None:
    """Pillow's PDF writer stores the page as an image XObject: it comes back out as an image."""
    inputs = extract_inputs(form_request([("file", "p.pdf", "application/pdf", pdf_with_image(), {})]), LIMITS)
    images = [item for item in inputs.media if item.location == "archive:form.file/page[1]/image[0]"]
    assert [item.kind for item in images] == ["image"]
    assert [item.sniffed_type for item in inputs.media if item.location == "form.file"] == ["application/pdf"]


WS_CARRIERS = [
    pytest.param(
        {"realtimeInput": {"mediaChunks": [{"mimeType": "image/png", "data": b64(PNG)}]}},
        "ws.realtimeInput.mediaChunks[0].data", "image/png", id="gemini-live-mediaChunks",
    ),
    pytest.param(
        {"realtime_input": {"media_chunks": [{"mime_type": "image/png", "data": b64(PNG)}]}},
        "ws.realtime_input.media_chunks[0].data", "image/png", id="gemini-live-media_chunks",
    ),
    pytest.param(
        {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": b64(PNG)}}},
        "ws.realtimeInput.video.data", "image/png", id="gemini-live-video-frame",
    ),
    pytest.param(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": b64(pcm16(0.1, 16_000))}}},
        "ws.realtimeInput.audio.data", "audio/pcm", id="gemini-live-raw-pcm",
    ),
    pytest.param(
        {"type": "input_audio_buffer.append", "audio": b64(pcm16(0.1))},
        "ws.audio", "audio/pcm", id="openai-realtime-audio-append",
    ),
    pytest.param(
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{b64(PNG)}"}]}},
        "ws.item.content[0].image_url", "image/png", id="openai-realtime-input-image",
    ),
    pytest.param(
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_audio", "audio": b64(wav(0.1))}]}},
        "ws.item.content[0].audio", "audio/wav", id="openai-realtime-input-audio-wav",
    ),
    # raw PCM chunks whose first samples happen to look like another format's magic stay PCM
    *[
        pytest.param(
            {"type": "input_audio_buffer.append", "audio": b64(start + pcm16(0.1)[len(start):])},
            "ws.audio", "audio/pcm", id=f"openai-realtime-pcm-starting-like-{label}",
        )
        for label, start in [
            ("mpeg-sync (samples -1, 0)", b"\xff\xff\x00\x00"),
            ("an-icon (samples 0, 1, 5)", b"\x00\x00\x01\x00\x05\x00"),
            ("gzip (sample -29921)", b"\x1f\x8b"),
            ("a-bmp", b"BM" + bytes(4) + b"\x00\x00\x00\x00"),
        ]
    ],
    pytest.param(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000",
                                     "data": b64(b"\xff\xff\x00\x00" + pcm16(0.1, 16_000)[4:])}}},
        "ws.realtimeInput.audio.data", "audio/pcm", id="gemini-live-pcm-starting-like-mpeg-sync",
    ),
]


@pytest.mark.parametrize(("frame", "location", "sniffed"), WS_CARRIERS)
def test_websocket_frames_carry_media(frame: dict, location: str, sniffed: str) -> None:
    """Client WebSocket frames go through the same decoders (text and binary frames alike)."""
    for payload, is_text in ((json.dumps(frame), True), (json.dumps(frame).encode(), False)):
        inputs = extract_websocket_inputs(payload, is_text, LIMITS)
        assert media_at(inputs, location) == [sniffed]


AUDIO_CARRIERS = [
    pytest.param(
        json_request({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": b64(encoded_audio("mp3")), "format": "mp3"}}]}]}),
        "body.messages[0].content[0].input_audio.data", "audio/mpeg", id="openai-input-audio-mp3",
    ),
    pytest.param(
        form_request([("audio", "take.wav", "audio/mpeg", wav(), {})]),
        "form.audio", "audio/wav", id="elevenlabs-sts-multipart-wav",
    ),
    pytest.param(
        form_request([("files", "a.ogg", None, encoded_audio("ogg"), {}),
                      ("files", "b.flac", None, encoded_audio("flac"), {})]),
        "form.files[1]", "audio/flac", id="elevenlabs-ivc-repeated-files",
    ),
    pytest.param(raw_request(encoded_audio("m4a"), "application/octet-stream"), "body", "audio/mp4",
                 id="gemini-resumable-upload-m4a"),
    pytest.param(
        json_request({"contents": [{"parts": [{"inlineData": {"mimeType": "audio/ogg", "data": b64(wav())}}]}]}),
        "body.contents[0].parts[0].inlineData.data", "audio/wav", id="gemini-inline-audio-declared-ogg",
    ),
]


@pytest.mark.parametrize(("request_content", "location", "sniffed"), AUDIO_CARRIERS)
def test_audio_is_found_in_every_carrier(request_content: RequestContent, location: str, sniffed: str) -> None:
    inputs = extract_inputs(request_content, LIMITS)
    assert media_at(inputs, location) == [sniffed]


def texts_of(inputs: Inputs) -> dict[str, str]:
    return {item.location: item.text for item in inputs.texts}


TEXT_CARRIERS = [
    pytest.param(json_request({"messages": [{"role": "user", "content": [{"type": "text", "text": SECRET_TEXT}]}]}),
                 "body.messages[0].content[0].text", id="json-leaf"),
    pytest.param(json_request({"metadata": {SECRET_TEXT: "1"}}), "body.metadata{0}#key", id="json-key"),
    pytest.param(form_request([("prompt", None, None, SECRET_TEXT.encode(), {})]), "form.prompt", id="multipart-field"),
    pytest.param(raw_request(f"f.req={json.dumps([[SECRET_TEXT]])}&at=x".encode(), "application/x-www-form-urlencoded"),
                 "form.f.req.$json[0][0]", id="gemini-web-f.req"),
    pytest.param(RequestContent("GET", "/search", query=(("q", SECRET_TEXT),)), "query.q", id="query"),
    pytest.param(RequestContent("GET", "/", headers=(("X-Prompt", SECRET_TEXT),)), "header.x-prompt", id="header"),
    pytest.param(RequestContent("GET", "/", headers=(("Cookie", f"sid=abc; draft={SECRET_TEXT}"),)),
                 "cookie.draft", id="cookie"),
    pytest.param(raw_request(SECRET_TEXT.encode(), "text/plain"), "body", id="text-plain"),
    pytest.param(form_request([("file", "s.docx", None, docx(SECRET_TEXT), {})]),
                 "archive:form.file/word/document.xml", id="docx-runs-joined"),
    pytest.param(form_request([("file", "s.pdf", "application/pdf",
                                __import__("content_samples").pdf_with_text(SECRET_TEXT), {})]),
                 "archive:form.file/page[1]", id="pdf-page-text"),
    pytest.param(form_request([("file", "s.xlsx", None, __import__("content_samples").xlsx(SECRET_TEXT), {})]),
                 "archive:form.file/xl/sharedStrings.xml", id="xlsx-shared-strings"),
    pytest.param(raw_request(rtf_with(PNG, SECRET_TEXT), "text/rtf"), "body", id="rtf"),
    pytest.param(raw_request(html_with(PNG, SECRET_TEXT), "text/html"), "body", id="html"),
    pytest.param(form_request([("file", "notes.md", "text/markdown", f"# {SECRET_TEXT}".encode(), {})]),
                 "form.file", id="markdown-file"),
    pytest.param(
        json_request({"messages": [{"role": "user", "content": [{"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": SECRET_TEXT}}]}]}, "/v1/messages"),
        "body.messages[0].content[0].source.data", id="anthropic-plain-text-document"),
    pytest.param(
        json_request({"messages": [{"role": "user", "content": [{"type": "document", "source": {
            "type": "base64", "media_type": "application/pdf",
            "data": b64(__import__("content_samples").pdf_with_text(SECRET_TEXT))}}]}]}, "/v1/messages"),
        "archive:body.messages[0].content[0].source.data/page[1]", id="anthropic-pdf-document"),
    pytest.param(
        json_request({"contents": [{"parts": [{"inlineData": {"mimeType": "text/plain",
                                                               "data": b64(SECRET_TEXT.encode())}}]}]}),
        "body.contents[0].parts[0].inlineData.data", id="gemini-inline-text"),
]


@pytest.mark.parametrize(("request_content", "location"), TEXT_CARRIERS)
def test_text_is_found_in_every_carrier(request_content: RequestContent, location: str) -> None:
    found = texts_of(extract_inputs(request_content, LIMITS))
    assert SECRET_TEXT in found.get(location, ""), found


def test_websocket_text_frames_and_credentials() -> None:
    """ElevenLabs stream-input text is captured; its API key is not (credentials are never inputs)."""
    frame = json.dumps({"text": SECRET_TEXT, "xi_api_key": "sk-should-not-appear", "try_trigger_generation": True})
    inputs = extract_websocket_inputs(frame, True, LIMITS)
    assert texts_of(inputs) == {"ws.text": SECRET_TEXT}


def test_credential_headers_are_not_inputs() -> None:
    headers = (("Authorization", "Bearer sk-secret"), ("x-api-key", "sk-secret"), ("Cookie", "session=tok"))
    inputs = extract_inputs(RequestContent("GET", "/", headers=headers), LIMITS)
    assert inputs.empty


REFERENCES = [
    pytest.param({"source": {"type": "url", "url": "https://example.com/still.png"}}, ("url", "https://example.com/still.png"),
                 id="anthropic-url-source"),
    pytest.param({"fileData": {"mimeType": "video/mp4", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}},
                 ("file_id", "files/abc-123"), id="gemini-file-uri"),
    pytest.param({"type": "input_image", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"},
                 ("file_id", "file-6F2ksmvXxt4VdoqmHRw6kL"), id="openai-file-id"),
    pytest.param({"source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
                 ("file_id", "file_011CNha8iCJcU1wXNR6q4V8w"), id="anthropic-file-id"),
    pytest.param({"promptImage": "runway://uploads/abc123"}, ("file_id", "runway://uploads/abc123"), id="runway-uri"),
    pytest.param({"asset_pointer": "file-service://file-Xy12abCD34"}, ("file_id", "file-Xy12abCD34"),
                 id="chatgpt-asset"),
    pytest.param({"mcp_servers": [{"url": "https://mcp.example/sse"}]}, ("url", "https://mcp.example/sse"),
                 id="mcp-server-url"),
]


@pytest.mark.parametrize(("body", "reference"), REFERENCES)
def test_references_are_found(body: dict, reference: tuple[str, str]) -> None:
    inputs = extract_inputs(json_request(body), LIMITS)
    assert reference in {(ref.kind, ref.value) for ref in inputs.references}


def test_urls_in_prose_are_text_not_references() -> None:
    """Providers fetch URL fields, not URLs mentioned in a prompt: those stay text for the detectors."""
    inputs = extract_inputs(json_request({"text": "compare with https://imdb.example/title/tt01."}), LIMITS)
    assert inputs.references == ()
    assert "https://imdb.example/title/tt01" in inputs.texts[0].text


def test_tool_names_are_not_file_ids() -> None:
    inputs = extract_inputs(json_request({"tools": [{"type": "file_search"}], "include": ["file_search_call"]}), LIMITS)
    assert inputs.references == ()


def test_encoded_filenames_are_decoded() -> None:
    """RFC 5987 `filename*` wins over the plain fallback; RFC 2047 words are decoded."""
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fallback.png\"; "
        b"filename*=UTF-8''%C3%A9t%C3%A9%20poster.png\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"other\"; filename=\"=?utf-8?b?w6l0w6kucG5n?=\"\r\n\r\n"
        + PNG + b"\r\n--b--\r\n"
    )
    inputs = extract_inputs(RequestContent("POST", "/", body=body, content_type="multipart/form-data; boundary=b"),
                            LIMITS)
    assert [item.name for item in inputs.media] == ["été poster.png", "été.png"]


def test_gemini_multipart_related_upload() -> None:
    """Gemini `uploadType=multipart`: a JSON metadata part and a media part, without Content-Disposition."""
    body = (
        b"--x\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        b'{"file": {"display_name": "' + SECRET_TEXT.encode() + b'"}}\r\n'
        b"--x\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n--x--\r\n"
    )
    inputs = extract_inputs(RequestContent("POST", "/upload/v1beta/files", body=body,
                                           content_type="multipart/related; boundary=x"), LIMITS)
    assert texts_of(inputs) == {"form.#0.$json.file.display_name": SECRET_TEXT}
    assert media_at(inputs, "form.#1") == ["image/png"]


def test_operating_system_litter_in_archives_does_not_block() -> None:
    """Finder's AppleDouble files and .DS_Store, and EMF thumbnails in office files, are recognised."""
    emf = struct.pack("<II4i4i4sIIIHHIIIii ii", 1, 88, 0, 0, 99, 99, 0, 0, 2540, 2540, b" EMF", 0x10000,
                      88, 1, 1, 0, 0, 0, 0, 1024, 768, 320, 240)
    archive = zip_of({
        "stills/pic.png": PNG,
        "__MACOSX/stills/._pic.png": b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"\x00" * 32,
        "stills/.DS_Store": b"\x00\x00\x00\x01Bud1" + b"\x00" * 32,
        "stills/Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
        "docProps/thumbnail.emf": emf,
    })
    inputs = extract_inputs(form_request([("file", "refs.zip", None, archive, {})]), LIMITS)
    assert media_at(inputs, "archive:form.file/stills/pic.png") == ["image/png"]
    assert media_at(inputs, "archive:form.file/docProps/thumbnail.emf") == ["image/emf"]


@pytest.mark.parametrize(
    "wrapping",
    ["", "\n", "\r\n", " ", "\t", "\u00a0", "\u2028", "\u3000", "\x1c", "\x85"],
    ids=["none", "lf", "crlf", "space", "tab", "nbsp", "line separator", "ideographic space", "file separator", "nel"],
)
def test_base64_wrapped_in_any_whitespace_decodes_to_the_same_bytes(wrapping: str) -> None:
    """Every character Python's `\\s` matches is dropped before decoding (as the regex used to do)."""
    from gateway.content.embedded import decode_base64

    data = bytes(range(256)) * 3
    encoded = base64.b64encode(data).decode()
    wrapped = wrapping.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert decode_base64(wrapped, 1 << 20, "body") == data


def _b64_layers(data: bytes, layers: int) -> str:
    for _ in range(layers):
        data = base64.b64encode(data)
    return data.decode()


def _texts(inputs: Inputs) -> list[str]:
    return [item.text for item in inputs.texts]


@pytest.mark.parametrize(
    ("value", "media"),
    [
        pytest.param(_b64_layers(PNG, 2), ["image/png"], id="base64 of base64"),
        pytest.param(_b64_layers(PNG, 3), ["image/png"], id="base64 three layers deep"),
        pytest.param("see: " + _b64_layers(PNG, 2) + " thanks", ["image/png"], id="base64 of base64 inside prose"),
        pytest.param(PNG.hex(), ["image/png"], id="hex"),
        pytest.param(PNG.hex().upper(), ["image/png"], id="upper-case hex"),
        pytest.param("bytes: " + PNG.hex() + " end", ["image/png"], id="hex inside prose"),
        pytest.param(PNG.hex() + "0", ["image/png"], id="hex with a stray last digit"),
        pytest.param(_b64_layers(PNG.hex().encode(), 1), [], id="base64 of hex: not followed (text to a model)"),
        pytest.param("f" * 200, [], id="long hex without a signature"),
        pytest.param("1f8b" + "0" * 156, [], id="hex opening like gzip: a digest, not a file"),
        pytest.param("ab" * 64, [], id="sha-512-sized hex"),
        pytest.param(_b64_layers(b"plain words, not a file at all " * 4, 2), [], id="base64 of base64 of text"),
    ],
)
def test_files_wrapped_in_more_than_one_encoding_are_unwrapped(value: str, media: list[str]) -> None:
    """A file hidden under two or three layers of base64, or spelled in hex, is decoded like one
    base64 layer; runs that open with no file signature stay text."""
    inputs = extract_inputs(json_request({"messages": [{"role": "user", "content": value}]}), LIMITS)
    assert [item.sniffed_type for item in inputs.media] == media
    if not media:
        assert _texts(inputs) != []

"""gateway.provenance and `greenroom provenance scan`: outputs recorded as fingerprints, found again in deliverables.

The story of issue 7: a fake provider returns a generated image; the gateway records its fingerprints (never its
bytes); someone saves it, re-encodes, resizes, crops, grades or mirrors it and drops it into a folder of unrelated
media; the scan finds exactly that file, with the event that produced it, and nothing else.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest
from PIL import Image, ImageOps
from test_fingerprint import (
    colour_grade,
    crop,
    encode_audio,
    encode_image,
    encode_video,
    make_audio,
    make_image,
)

from gateway.audit import new_event_id, open_store
from gateway.audit.postgres import PostgresDatabase
from gateway.cli import main
from gateway.commands.provenance import _Progress, scan
from gateway.errors import DuplicateEntryError
from gateway.fingerprint import ImageHash, fingerprint_media, fingerprint_output
from gateway.outputs import extract_outputs
from gateway.provenance import OutputLedger

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
TS = 1_790_000_000.0


def _openai_image_response(png: bytes) -> bytes:
    """What a fake OpenAI Images endpoint returns for a gpt-image model."""
    return json.dumps({"created": int(TS), "data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()


def _record_response(ledger: OutputLedger, content_type: str, body: bytes, provider: str, **who: str) -> str:
    """The lead's response hook in miniature: extract, fingerprint, record; returns the event id."""
    event_id = new_event_id()
    for index, item in enumerate(extract_outputs(content_type, body, provider)):
        ledger.record(
            event_id=event_id, index=index, production=who.get("production", "northern-lights"),
            user=who.get("user", "alice"), tool=who.get("tool", "openai-api"), ts=TS,
            fingerprint=fingerprint_output(item), location=item.location,
        )  # fmt: skip
    return event_id


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A gateway data dir with its audit store (the ledger table comes with the audit schema)."""
    root = tmp_path / "var"
    open_store(root, replica_id="test").close()
    return root


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    """The generated output (an image), plus the bytes of an audio output."""
    return {
        "image": encode_image(make_image(1)),
        "audio": encode_audio(make_audio(3), "wav", "pcm_s16le"),
    }


@pytest.fixture(scope="module")
def unrelated() -> dict[str, bytes]:
    """A deliverables folder's worth of media that no AI tool produced (different seeds), and a sidecar."""
    files = {f"stills/still_{seed}.jpg": encode_image(make_image(seed), "JPEG", quality=85) for seed in (20, 21, 22)}
    files["stills/poster.png"] = encode_image(make_image(23, (512, 768)))
    files["stills/grey_card.png"] = encode_image(Image.new("RGB", (256, 256), (128, 128, 128)))
    files["audio/score.mp3"] = encode_audio(make_audio(24), "mp3", "libmp3lame", bitrate=128_000)
    files["audio/room_tone.wav"] = encode_audio(make_audio(25, seconds=4.0), "wav", "pcm_s16le")
    files["video/teaser.mp4"] = encode_video([make_image(s, (320, 240)) for s in (26, 27, 28)], fps=1)
    files["notes/edl.txt"] = b"001  AX  V  C  00:00:00:00 00:00:05:00\n"
    return files


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _scan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["provenance", "scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


COPIES = [
    ("exact copy.png", lambda image: image, "PNG", "exact"),
    ("jpeg q70.jpg", lambda image: image, "JPEG", "near"),
    ("resized 50%.jpg", lambda image: image.resize((image.width // 2, image.height // 2)), "JPEG", "near"),
    ("cropped 10%.jpg", lambda image: crop(image, 0.10), "JPEG", "near"),
    ("colour graded.jpg", colour_grade, "JPEG", "near"),
    ("mirrored.jpg", ImageOps.mirror, "JPEG", "near"),
    ("all at once.webp", lambda image: colour_grade(crop(ImageOps.mirror(image), 0.1)).resize((480, 320)), "WEBP",
     "near"),
    # off the recorded crop grid: found by local features (stage 2)
    ("cropped 5% left.jpg", lambda image: crop(image, 0.05, "left"), "JPEG", "near"),
    ("cropped 25% top-left.jpg", lambda image: crop(image, 0.25, "top-left"), "JPEG", "near"),
    ("rotated 5 degrees.jpg", lambda image: image.rotate(5), "JPEG", "near"),
    ("screenshot.png", lambda image: _screenshot(image), "PNG", "near"),
]


def _screenshot(image: Image.Image) -> Image.Image:
    """The still at 60 % inside a 1920×1080 grey frame, as a review-tool screenshot would show it."""
    frame = Image.new("RGB", (1920, 1080), (240, 240, 240))
    frame.paste(image.resize((image.width * 6 // 10, image.height * 6 // 10)), (300, 200))
    return frame


@pytest.mark.parametrize(("name", "transform", "fmt", "kind"), COPIES, ids=[c[0] for c in COPIES])
def test_scan_finds_exactly_the_generated_image(
    name: str, transform, fmt: str, kind: str, data_dir: Path, tmp_path: Path, generated: dict[str, bytes],
    unrelated: dict[str, bytes], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Exit 1, one matching file, the right event id, tool, user and date; the unrelated media match nothing."""
    with OutputLedger.open(data_dir) as ledger:
        event_id = _record_response(ledger, "application/json", _openai_image_response(generated["image"]), "openai")
        other_event = _record_response(ledger, "audio/wav", generated["audio"], "elevenlabs", tool="elevenlabs-api")
    assert event_id != other_event
    folder = tmp_path / "deliverables"
    _write(folder, unrelated)
    image = Image.open(io.BytesIO(generated["image"])).convert("RGB")
    if kind == "exact":
        (folder / "stills" / name).write_bytes(generated["image"])
    else:
        options = {"quality": 70} if fmt == "JPEG" else {}
        (folder / "stills" / name).write_bytes(encode_image(transform(image), fmt, **options))

    code, report = _scan_json(capsys, str(folder), "--data-dir", str(data_dir))

    assert code == 1
    assert [(Path(m["path"]).name, m["event_id"], m["match"]) for m in report["matches"]] == [(name, event_id, kind)]
    match = report["matches"][0]
    assert (match["tool"], match["user"], match["production"], match["date"]) == (
        "openai-api", "alice", "northern-lights", "2026-09-21T14:13:20Z"
    )
    on_grid = not any(word in name for word in ("5%", "25%", "rotated"))  # a screenshot: PDQ inside its borders
    assert match["measure"] == ("sha256" if kind == "exact" else "pdq" if on_grid else "features")
    assert report["unchecked"] == [] and report["files"] == len(unrelated) + 1 and report["media"] == len(unrelated)


def test_a_folder_of_unrelated_media_passes(
    data_dir: Path, tmp_path: Path, generated: dict[str, bytes], unrelated: dict[str, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with OutputLedger.open(data_dir) as ledger:
        _record_response(ledger, "application/json", _openai_image_response(generated["image"]), "openai")
        _record_response(ledger, "audio/wav", generated["audio"], "elevenlabs")
    _write(tmp_path / "clean", unrelated)
    code, report = _scan_json(capsys, str(tmp_path / "clean"), "--data-dir", str(data_dir))
    assert (code, report["matches"], report["unchecked"]) == (0, [], [])


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mix.mp3", dict(fmt="mp3", codec="libmp3lame", bitrate=96_000)),
        ("mix.m4a", dict(fmt="mp4", codec="aac", out_rate=48_000, bitrate=96_000)),
    ],
)
def test_reencoded_audio_output_is_found(
    name: str, options: dict, data_dir: Path, tmp_path: Path, generated: dict[str, bytes],
    unrelated: dict[str, bytes], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """ElevenLabs-style raw audio output, re-encoded to MP3 / AAC at another rate, matches by its audio fingerprint."""
    with OutputLedger.open(data_dir) as ledger:
        event_id = _record_response(ledger, "audio/wav", generated["audio"], "elevenlabs", tool="elevenlabs-api",
                                    user="bob", production="harbor-nights")  # fmt: skip
    folder = tmp_path / "deliverables"
    _write(folder, unrelated)
    (folder / "audio" / name).write_bytes(encode_audio(make_audio(3), **options))
    code, report = _scan_json(capsys, str(folder), "--data-dir", str(data_dir), "--production", "harbor-nights")
    assert code == 1
    assert [(Path(m["path"]).name, m["event_id"], m["measure"], m["tool"], m["user"]) for m in report["matches"]] == [
        (name, event_id, "audio", "elevenlabs-api", "bob")
    ]
    assert report["matches"][0]["distance"] < 0.2


def test_production_filter_only_checks_that_productions_outputs(
    data_dir: Path, tmp_path: Path, generated: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    with OutputLedger.open(data_dir) as ledger:
        _record_response(ledger, "application/json", _openai_image_response(generated["image"]), "openai")
    (tmp_path / "copy.png").write_bytes(generated["image"])
    assert _scan_json(capsys, str(tmp_path / "copy.png"), "--data-dir", str(data_dir), "--production",
                      "harbor-nights")[0] == 0  # fmt: skip
    assert _scan_json(capsys, str(tmp_path / "copy.png"), "--data-dir", str(data_dir), "--production",
                      "northern-lights")[0] == 1  # fmt: skip


def test_the_output_bytes_are_stored_nowhere(data_dir: Path, generated: dict[str, bytes]) -> None:
    """The canary: after recording, neither the output's bytes nor their base64 appear anywhere under the data dir."""
    canary = encode_image(make_image(99))
    response = _openai_image_response(canary)
    store = open_store(data_dir, replica_id="test")
    try:
        _record_response(OutputLedger(store.db), "application/json", response, "openai")
    finally:
        store.close()
    encoded = base64.b64encode(canary)
    probes = [canary[i : i + 24] for i in range(64, len(canary) - 24, max(1, len(canary) // 16))]
    probes += [encoded[i : i + 32] for i in range(64, len(encoded) - 32, max(1, len(encoded) // 16))]
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("audit.sqlite3") for p in files)
    for path in files:
        content = path.read_bytes()
        assert not any(probe in content for probe in probes), f"output bytes found in {path}"
    with OutputLedger.open(data_dir) as ledger:  # and yet it is recognised
        assert len(ledger.match_sha256(fingerprint_media(canary).sha256)) == 1  # type: ignore[union-attr]


def test_ledger_lookups(data_dir: Path, generated: dict[str, bytes]) -> None:
    """match_sha256 (exact), match_image (dihedral variants find the mirror), match_audio (BER)."""
    with OutputLedger.open(data_dir) as ledger:
        event_id = _record_response(ledger, "application/json", _openai_image_response(generated["image"]), "openai")
        audio_event = _record_response(ledger, "audio/wav", generated["audio"], "elevenlabs")
        image_fp = fingerprint_media(generated["image"])
        mirrored = fingerprint_media(encode_image(ImageOps.mirror(make_image(1)), "JPEG", quality=80))
        audio_fp = fingerprint_media(encode_audio(make_audio(3), "mp3", "libmp3lame", bitrate=64_000))
        assert image_fp is not None and mirrored is not None and audio_fp is not None and audio_fp.audio is not None
        [exact] = ledger.match_sha256(image_fp.sha256)
        assert (exact.record.event_id, exact.match) == (event_id, "exact")
        assert exact.record.location == "body.data[0].b64_json"
        assert ledger.match_image(mirrored.images[0].bits) == []  # unmirrored query: too far
        [near] = ledger.match_image(mirrored.images)
        assert (near.record.event_id, near.match, near.measure) == (event_id, "near", "pdq") and near.distance <= 31
        assert "flip" in near.detail
        [heard] = ledger.match_audio(audio_fp.audio)
        assert heard.record.event_id == audio_event and heard.distance < 0.2
        assert ledger.match_sha256(image_fp.sha256, production="harbor-nights") == []
        with pytest.raises(DuplicateEntryError):
            ledger.record(event_id=event_id, index=0, production="p", user="u", tool="t", ts=TS, fingerprint=image_fp)


def test_ledger_on_postgresql(generated: dict[str, bytes]) -> None:
    """The migration and the lookups work on PostgreSQL too (BYTEA, BIGINT)."""
    schema = f"gr_test_prov_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        db = PostgresDatabase(f"{PG_BASE}?options=-csearch_path%3D{schema}")
        with OutputLedger(db, owns_db=True) as ledger:
            response = _openai_image_response(generated["image"])
            event_id = _record_response(ledger, "application/json", response, "openai")
            query = fingerprint_media(encode_image(crop(make_image(1), 0.1), "JPEG", quality=70))
            assert query is not None
            assert [m.record.event_id for m in ledger.view().match(query)] == [event_id]
            assert [m.record.event_id for m in ledger.match_image(query.images)] == [event_id]  # hashes only
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_unreadable_media_fails_closed(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that claims to be a JPEG but cannot be decoded is listed and the scan exits 2, not 0."""
    _write(tmp_path / "in", {"broken.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 100})
    code, report = _scan_json(capsys, str(tmp_path / "in"), "--data-dir", str(data_dir))
    assert code == 2 and [Path(u["path"]).name for u in report["unchecked"]] == ["broken.jpg"]


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_text_and_html_reports_name_the_event(
    fmt: str, data_dir: Path, tmp_path: Path, generated: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    with OutputLedger.open(data_dir) as ledger:
        event_id = _record_response(ledger, "application/json", _openai_image_response(generated["image"]), "openai")
    _write(tmp_path / "in", {"frame<1>.png": generated["image"]})
    assert main(["provenance", "scan", str(tmp_path / "in"), "--data-dir", str(data_dir), "--format", fmt]) == 1
    out = capsys.readouterr().out
    assert event_id in out and "openai-api" in out and "alice" in out
    if fmt == "html":
        assert "frame&lt;1&gt;.png" in out and "<table>" in out
    else:
        assert out.startswith("MATCH ") and "exact copy" in out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No audit store, or a path that does not exist: exit 2 with a message (never a clean 0)."""
    assert main(["provenance", "scan", str(tmp_path), "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no audit store" in capsys.readouterr().err
    assert main(["provenance", "scan", str(tmp_path / "missing"), "--data-dir", str(tmp_path)]) == 2


def test_progress_bar(data_dir: Path, tmp_path: Path, generated: dict[str, bytes]) -> None:
    _write(tmp_path / "in", {"a.png": generated["image"], "b.txt": b"x"})
    stream = io.StringIO()
    with OutputLedger.open(data_dir) as ledger:
        report = scan([tmp_path / "in"], ledger.view(), progress=_Progress(stream))
    assert report.files == 2 and report.media == 1
    assert "[" + "#" * 30 + "] 2/2" in stream.getvalue()


def test_scan_speed_is_reasonable(data_dir: Path, tmp_path: Path, unrelated: dict[str, bytes]) -> None:
    """A folder of media scans in seconds against a ledger of 200 outputs (hashes matched with numpy)."""
    rng = np.random.default_rng(0)
    with OutputLedger.open(data_dir) as ledger:
        fingerprint = fingerprint_media(unrelated["stills/poster.png"], recorded=True)
        assert fingerprint is not None
        for n in range(200):
            images = tuple(ImageHash(rng.integers(0, 256, 32, np.uint8).tobytes(), 90, h.variant)
                           for h in fingerprint.images)  # fmt: skip
            ledger.record(event_id=f"evt_{n}", index=0, production="p", user="u", tool="t", ts=TS,
                          fingerprint=replace(fingerprint, sha256=f"{n:064x}", images=images, features=()))  # fmt: skip
        _write(tmp_path / "in", unrelated)
        started = time.monotonic()
        report = scan([tmp_path / "in"], ledger.view())
    assert report.matched == [] and time.monotonic() - started < 30

"""`greenroom audit export|verify|show` and `greenroom keys rotate|shred|purge`, on SQLite and
PostgreSQL, through `gateway.cli.main`."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from audit_helpers import make_event, pg_dsn

from gateway.audit import open_store
from gateway.cli import main
from gateway.commands.audit import parse_since
from gateway.vault import CaptureKind, Vault, master_key_provider

SECRET = "the secret script of Project Lantern"


@dataclass(frozen=True, slots=True)
class Seeded:
    data_dir: Path
    ids: list[str]
    """northern-lights (with a text capture), harbor-nights (with a media capture), northern-lights (old)."""


@pytest.fixture
def seeded(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Seeded:
    for name in ("GREENROOM_AUDIT_DSN", "GREENROOM_REPLICA_ID", "GREENROOM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    if backend == "postgres":
        monkeypatch.setenv("GREENROOM_AUDIT_DSN", pg_dsn(request.getfixturevalue("pg_schema")))
    data_dir = tmp_path / "var"
    events = [
        make_event(1),
        make_event(2, production="harbor-nights", user="bob"),
        make_event(3, ts=time.time() - 30 * 86400),
    ]
    with open_store(data_dir) as store:
        vault = Vault(master_key_provider(data_dir), store)
        first, second, third = events
        store.record(
            first,
            [
                vault.seal(
                    first.id,
                    first.production,
                    CaptureKind.TEXT,
                    "body.messages[0].content",
                    "text/plain",
                    SECRET.encode(),
                )
            ],
        )
        store.record(
            second,
            [
                vault.seal(
                    second.id, second.production, CaptureKind.MEDIA, "multipart:file", "image/png", b"\x89PNG-pixels"
                )
            ],
        )
        store.record(third)
    return Seeded(data_dir, [e.id for e in events])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_jsonl_follows_the_contract(seeded: Seeded, capsys) -> None:
    """One JSON object per event, oldest first, with the contract's fields and never an input."""
    code, out, _ = run(capsys, "audit", "export", "--data-dir", str(seeded.data_dir))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [seeded.ids[2], seeded.ids[0], seeded.ids[1]]
    for row in rows:
        assert {"id", "ts", "user", "production", "tool", "host", "path", "decision", "reasons"} <= row.keys()
        assert row["decision"] in {"allow", "notify", "redact", "hold", "block"}
        assert all("rule" in reason for reason in row["reasons"])
    assert SECRET not in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), [2, 0, 1]),
        (("--production", "harbor-nights"), [1]),
        (("--production", "northern-lights"), [2, 0]),
        (("--since", "2000-01-01T00:00:00Z"), [2, 0, 1]),
        (("--since", "recent"), [0, 1]),
        (("--since", "recent", "--production", "northern-lights"), [0]),
    ],
    ids=["all", "one production", "other production", "since long ago", "since recently", "both filters"],
)
def test_export_filters(seeded: Seeded, capsys, args: tuple[str, ...], expected: list[int]) -> None:
    args = tuple(
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400)) if a == "recent" else a for a in args
    )
    code, out, _ = run(capsys, "audit", "export", "--data-dir", str(seeded.data_dir), *args)
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [seeded.ids[i] for i in expected]


def test_export_csv(seeded: Seeded, capsys) -> None:
    code, out, _ = run(capsys, "audit", "export", "--data-dir", str(seeded.data_dir), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == [seeded.ids[2], seeded.ids[0], seeded.ids[1]]
    assert rows[1]["rules"] == "pii.email" and rows[1]["decision"] == "notify"
    assert SECRET not in out


def test_a_bad_since_is_a_usage_error(seeded: Seeded, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "export", "--data-dir", str(seeded.data_dir), "--since", "yesterday"])
    assert info.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_verify_passes_then_names_the_first_bad_event(seeded: Seeded, capsys) -> None:
    code, out, _ = run(capsys, "audit", "verify", "--data-dir", str(seeded.data_dir))
    assert (code, out.startswith("OK")) == (0, True)
    with open_store(seeded.data_dir) as store, store.db.transaction() as session:
        session.execute(
            "UPDATE audit_entries SET body = replace(body, 'bob', 'eve') WHERE event_id = ?", (seeded.ids[1],)
        )
    code, _, err = run(capsys, "audit", "verify", "--data-dir", str(seeded.data_dir))
    assert code == 1
    assert f"first bad event: modified: {seeded.ids[1]}" in err


def test_show_prints_metadata_only_without_decrypt(seeded: Seeded, capsys) -> None:
    code, out, _ = run(capsys, "audit", "show", seeded.ids[0], "--data-dir", str(seeded.data_dir))
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == seeded.ids[0] and "inputs" not in shown
    assert shown["captures"][0]["location"] == "body.messages[0].content"
    assert SECRET not in out


def test_show_decrypt_prints_inputs_and_is_itself_audited(seeded: Seeded, capsys) -> None:
    """--decrypt prints the plaintext; an `audit.decrypt` event names who, which event and when."""
    code, out, _ = run(
        capsys, "audit", "show", seeded.ids[0], "--data-dir", str(seeded.data_dir), "--decrypt", "--user", "carol"
    )
    assert code == 0
    assert json.loads(out)["inputs"] == [
        {"kind": "text", "location": "body.messages[0].content", "content_type": "text/plain", "text": SECRET}
    ]
    code, out, _ = run(capsys, "audit", "show", seeded.ids[1], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert json.loads(out)["inputs"][0]["base64"] == "iVBORy1waXhlbHM="
    _, out, _ = run(capsys, "audit", "export", "--data-dir", str(seeded.data_dir))
    audits = [json.loads(line) for line in out.splitlines() if '"audit.decrypt"' in line]
    assert (audits[0]["user"], audits[0]["production"], audits[0]["reasons"][0]["entity"]) == (
        "carol",
        "northern-lights",
        seeded.ids[0],
    )
    assert audits[0]["outcome"]["status"] == 200
    assert SECRET not in out
    code, _, _ = run(capsys, "audit", "verify", "--data-dir", str(seeded.data_dir))
    assert code == 0


def test_show_an_unknown_event(seeded: Seeded, capsys) -> None:
    code, _, err = run(capsys, "audit", "show", "evt_nope", "--data-dir", str(seeded.data_dir))
    assert code == 1 and "no event evt_nope" in err


def test_rotate_keeps_captures_readable(seeded: Seeded, capsys) -> None:
    code, out, _ = run(
        capsys, "keys", "rotate", "--production", "northern-lights", "--settle", "0", "--data-dir", str(seeded.data_dir)
    )
    assert code == 0 and "1 capture key(s) rewrapped" in out
    code, out, _ = run(capsys, "audit", "show", seeded.ids[0], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert code == 0 and SECRET in out


def test_shred_destroys_the_key_but_the_trail_still_verifies(seeded: Seeded, capsys) -> None:
    code, _, err = run(capsys, "keys", "shred", "--production", "northern-lights", "--data-dir", str(seeded.data_dir))
    assert code == 1 and "--yes" in err  # no terminal to confirm on: nothing changes
    code, out, _ = run(capsys, "audit", "show", seeded.ids[0], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert code == 0 and SECRET in out

    code, out, _ = run(
        capsys, "keys", "shred", "--production", "northern-lights", "--yes", "--data-dir", str(seeded.data_dir)
    )
    assert code == 0 and "1 key version(s) destroyed" in out
    code, out, _ = run(capsys, "audit", "show", seeded.ids[0], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert code == 1
    assert SECRET not in out and "destroyed" in json.loads(out)["inputs"][0]["error"]
    code, out, _ = run(capsys, "audit", "show", seeded.ids[1], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert code == 0, "another production's captures are untouched"
    code, _, _ = run(capsys, "audit", "verify", "--data-dir", str(seeded.data_dir))
    assert code == 0


def test_shred_asks_for_the_production_id(seeded: Seeded, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "harbor-nights")
    code, _, _ = run(capsys, "keys", "shred", "--production", "northern-lights", "--data-dir", str(seeded.data_dir))
    assert code == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "northern-lights")
    code, _, _ = run(capsys, "keys", "shred", "--production", "northern-lights", "--data-dir", str(seeded.data_dir))
    assert code == 0


def test_purge_deletes_old_captures(seeded: Seeded, capsys) -> None:
    code, out, _ = run(
        capsys,
        "keys",
        "purge",
        "--retention-days",
        "0",
        "--production",
        "harbor-nights",
        "--data-dir",
        str(seeded.data_dir),
    )
    assert code == 0 and "1 capture(s)" in out
    code, out, _ = run(capsys, "audit", "show", seeded.ids[1], "--data-dir", str(seeded.data_dir), "--decrypt")
    assert json.loads(out)["inputs"] == []
    code, _, _ = run(capsys, "audit", "verify", "--data-dir", str(seeded.data_dir))
    assert code == 0


def test_a_missing_store_is_a_clear_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GREENROOM_AUDIT_DSN", raising=False)
    code, _, err = run(capsys, "audit", "verify", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "no audit store" in err
    assert not (tmp_path / "nowhere").exists()


def test_the_config_picks_postgres(tmp_path: Path, capsys, monkeypatch, pg_schema: str) -> None:
    """`--config DIR` whose gateway.yaml says `store: postgres` reads that database."""
    monkeypatch.delenv("GREENROOM_AUDIT_DSN", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "gateway.yaml").write_text(f"audit:\n  store: postgres\n  dsn: '{pg_dsn(pg_schema)}'\n")
    monkeypatch.setenv("GREENROOM_AUDIT_DSN", pg_dsn(pg_schema))
    with open_store(tmp_path / "var") as store:
        event = make_event(1)
        store.record(event)
    monkeypatch.delenv("GREENROOM_AUDIT_DSN")
    code, out, _ = run(capsys, "audit", "export", "--config", str(config), "--data-dir", str(tmp_path / "var"))
    assert code == 0 and json.loads(out)["id"] == event.id


def test_rotate_waits_for_running_gateways_by_default(seeded: Seeded, capsys) -> None:
    """Without --settle, rotation waits for the gateways' key caches to expire before destroying."""
    started = time.monotonic()
    code, _, _ = run(capsys, "keys", "rotate", "--production", "harbor-nights", "--data-dir", str(seeded.data_dir))
    assert code == 0
    assert time.monotonic() - started >= 2.0


def test_purge_uses_each_productions_retention_from_the_config(seeded: Seeded, tmp_path: Path, capsys) -> None:
    """`keys purge --config DIR`: each production's retention_days decides what goes."""
    config = tmp_path / "config"
    (config / "productions").mkdir(parents=True)
    for production, days in (("northern-lights", 7), ("harbor-nights", 365)):
        (config / "productions" / f"{production}.yaml").write_text(
            f"id: {production}\nname: {production}\nkind: documentary\nretention_days: {days}\n"
        )
    old = time.time() - 30 * 86400
    with open_store(seeded.data_dir) as store:
        vault = Vault(master_key_provider(seeded.data_dir), store)
        for production in ("northern-lights", "harbor-nights"):
            event = make_event(9, production=production, ts=old)
            store.record(event, [vault.seal(event.id, production, CaptureKind.TEXT, "body", "text/plain", b"old")])
    code, out, _ = run(capsys, "keys", "purge", "--config", str(config), "--data-dir", str(seeded.data_dir))
    assert code == 0
    assert "northern-lights: 1 capture(s) older than 7 days deleted" in out
    assert "harbor-nights: 0 capture(s) older than 365 days deleted" in out
    code, _, err = run(capsys, "keys", "purge", "--data-dir", str(seeded.data_dir))
    assert code == 2 and "--retention-days" in err


@pytest.mark.parametrize(
    ("value", "unix"),
    [
        ("2026-01-31", 1769817600.0),                 # a date: midnight UTC
        ("2026-01-31T09:00Z", 1769850000.0),
        ("2026-01-31T09:00", 1769850000.0),           # no zone: UTC
        ("2026-01-31T10:00+01:00", 1769850000.0),
    ],
)
def test_since_accepts_iso_dates_and_times(value: str, unix: float) -> None:
    """`audit export --since` and `report --since` read the same way (one parser)."""
    assert parse_since(value) == unix


@pytest.mark.parametrize("value", ["yesterday", "31/01/2026", ""])
def test_since_rejects_what_is_not_iso(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
        parse_since(value)

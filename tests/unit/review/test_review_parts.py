"""The review UI's parts on their own: SVG charts, sessions and their cookies."""

from __future__ import annotations

import re

from gateway.review.auth import SessionStore, load_or_create_key
from gateway.review.charts import horizontal_bars, stacked_bars


def test_stacked_bars_carry_their_numbers_as_tooltips() -> None:
    svg = str(stacked_bars("d", "Requests", ["Mon", "Tue"], {"allow": [3, 0], "block": [1, 2]}))
    assert svg.count('class="bar"') == 3  # zero-height bars are not drawn
    assert "<title>Mon · allow: 3</title>" in svg and "<title>Tue · block: 2</title>" in svg
    assert re.search(r'data-chart="d"', svg)


def test_chart_labels_are_escaped() -> None:
    svg = str(horizontal_bars("u", "Top users", [("<script>alert(1)</script>", 2)]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_sessions_expire_when_idle_and_reject_forged_cookies(tmp_path) -> None:
    now = [1000.0]
    store = SessionStore(load_or_create_key(tmp_path / "k"), idle_seconds=60, clock=lambda: now[0])
    session = store.create("carol")
    cookie = store.sign(session.id)
    assert store.get(cookie) is session
    assert store.get(session.id + ".0000") is None
    assert SessionStore(b"x" * 32).get(cookie) is None  # another key
    now[0] += 61
    assert store.get(cookie) is None


def test_session_key_is_private_and_stable(tmp_path) -> None:
    key = load_or_create_key(tmp_path / "keys" / "review-session.key")
    assert (tmp_path / "keys" / "review-session.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "keys" / "review-session.key") == key and len(key) == 32

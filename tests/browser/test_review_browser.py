"""The review UI in a real headless Chromium: log in, see the charts, filter and open events,
decrypt as a reviewer, be refused as an approver, approve a hold in writing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from browser_helpers import log_in, shot
from review_seed import PROMPT, demo_config

from gateway.approvals import open_approvals

pytestmark = pytest.mark.browser


def test_reviewer_sees_the_dashboard_charts(page) -> None:
    log_in(page, "carol")
    assert page.url.endswith("/")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40, "a chart did not render"
    bars = page.locator('svg[data-chart="decisions"] rect.bar')
    assert bars.count() >= 5
    # numbers on hover: every bar has its figure as a tooltip
    title = bars.first.locator("title").text_content()
    assert re.search(r": \d+$", title)
    bars.first.hover()
    assert page.locator("#stat-waiting").text_content() == "2"
    assert page.locator("table#waiting tr").count() == 3
    shot(page, "dashboard-carol")


def test_reviewer_filters_events_opens_one_and_decrypts(page, seeded) -> None:
    log_in(page, "carol")
    page.click("#nav-events")
    all_rows = page.locator("tr.event-row").count()
    assert all_rows == len(seeded.events)
    page.select_option("#f-decision", "hold")
    page.select_option("#f-production", "harbor-nights")
    page.click("#apply-filters")
    page.wait_for_load_state()
    assert "decision=hold" in page.url
    rows = page.locator("tr.event-row")
    assert rows.count() == 1 and rows.first.get_attribute("data-decision") == "hold"
    shot(page, "events-filtered")
    rows.first.locator("a.event-link").click()
    page.wait_for_load_state()
    assert seeded.media_event in page.url
    assert page.locator("#reasons").get_by_text("likeness.face").count() == 1
    page.click("#decrypt")
    page.wait_for_load_state()
    image = page.locator("img.decrypted-image")
    image.wait_for()
    assert page.evaluate("document.querySelector('img.decrypted-image').naturalWidth") == 64
    page.wait_for_function("document.querySelector('audio.decrypted-audio').readyState >= 1")
    duration = page.evaluate("document.querySelector('audio.decrypted-audio').duration")
    assert 0.3 < duration < 0.5
    assert page.locator("#decrypt-event").text_content().startswith("evt_")
    shot(page, "event-decrypted-media")
    page.goto(f"/events/{seeded.held_event}")
    page.click("#decrypt")
    page.wait_for_load_state()
    assert page.locator("pre.decrypted-text").text_content() == PROMPT


def test_approver_is_refused_decryption(page, seeded) -> None:
    log_in(page, "dave")
    page.goto(f"/events/{seeded.media_event}")
    assert page.locator("#no-decrypt").is_visible()
    assert page.locator("#decrypt").count() == 0
    # and a hand-made POST with dave's own valid CSRF token is refused by the server
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    response = page.request.post(f"/events/{seeded.media_event}/decrypt", form={"csrf": token})
    assert response.status == 403 and "data:image" not in response.text()
    page.goto(f"/events/{seeded.held_event}")  # another production's event
    assert "No such event" in page.content()
    shot(page, "approver-refused")


def test_staff_states_purpose_then_approver_approves_in_writing(page, seeded) -> None:
    log_in(page, "bob")
    assert page.url.endswith("/approvals")
    page.click(f"a[href='/approvals/{seeded.harbor_approval}']")
    page.fill("#purpose-text", "storyboard frame for episode 2, consent on file")
    page.click("#state-purpose")
    page.wait_for_load_state()
    assert page.locator("#purpose").text_content() == "storyboard frame for episode 2, consent on file"
    page.click("#logout")
    page.wait_for_load_state()

    log_in(page, "dave")
    page.click("#nav-approvals")
    page.click(f"a[href='/approvals/{seeded.harbor_approval}']")
    page.wait_for_load_state()
    assert page.locator("#status").text_content() == "pending"
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    page.fill("#approve-reason", "Likeness consent HN-CONSENT-2026-014 covers storyboards")
    page.fill("#approve-expires", until)
    shot(page, "approval-form")
    page.click("#approve")
    page.wait_for_load_state()
    assert page.locator("#status").text_content() == "approved"
    assert "Likeness consent HN-CONSENT-2026-014" in page.locator("#decision").text_content()
    assert page.locator("#trail tr").count() == 4  # header, hold, purpose, approved
    shot(page, "approval-approved")
    # the same content is now granted; different content still holds
    with open_approvals(seeded.data_dir, demo_config(), webhooks=False) as approvals:
        grant = approvals.find_grant(
            "harbor-nights", "likeness.face", approvals.get(seeded.harbor_approval).fingerprints
        )
        assert grant is not None and grant.decided_by == "dave"
        assert approvals.find_grant("harbor-nights", "likeness.face", ("0" * 64,)) is None


def test_report_downloads_from_the_ui(page) -> None:
    log_in(page, "carol")
    page.click("#nav-report")
    page.select_option("#r-production", "harbor-nights")
    page.select_option("#r-format", "md")
    with page.expect_download() as info:
        page.click("#download-report")
    download = info.value
    assert download.suggested_filename.startswith("greenroom-harbor-nights-")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert "# Generative AI use: Harbor Nights" in text

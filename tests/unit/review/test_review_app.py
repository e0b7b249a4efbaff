"""The review UI over a seeded store: login, sessions, CSRF, secure headers, roles, decryption
(audited, reviewers only), approvals and report download."""

from __future__ import annotations

import re

import pytest
from review_client import csrf_of, login
from review_seed import PROMPT

from gateway.approvals import ApprovalStatus


def test_pages_need_a_login(client) -> None:
    for path in ("/", "/events", "/approvals", "/report"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("name", "password"), [("carol", "wrong"), ("nobody", "carol-demo"), ("carol", "")])
def test_wrong_credentials_are_refused(client, name, password) -> None:
    response = login(client, name, password)
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert "greenroom_session" not in response.cookies


def test_login_sets_a_strict_httponly_session_cookie(client) -> None:
    response = login(client, "carol")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("greenroom_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/").status_code == 200


def test_login_without_its_csrf_token_is_refused(client) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "carol", "password": "carol-demo"}, follow_redirects=False)
    assert response.status_code == 403
    response = client.post(
        "/login", data={"csrf": "forged", "username": "carol", "password": "carol-demo"}, follow_redirects=False
    )
    assert response.status_code == 403


def test_repeated_failures_lock_the_name_out(client) -> None:
    for _ in range(5):
        assert login(client, "erin", "guess").status_code == 401
    assert login(client, "erin").status_code == 429


def test_a_forged_session_cookie_is_not_a_session(client) -> None:
    client.cookies.set("greenroom_session", "abc.def")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_secure_headers_on_every_page(client, as_user) -> None:
    for response in (client.get("/login"), as_user("carol").get("/"), client.get("/events")):
        h = response.headers
        assert "default-src 'none'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src" not in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        assert h["cache-control"] == "no-store" and h["referrer-policy"] == "same-origin"


def test_other_hosts_are_refused(app) -> None:
    from starlette.testclient import TestClient

    assert TestClient(app, base_url="http://evil.example").get("/login").status_code == 400


def test_dashboard_draws_charts_with_numbers_on_hover(as_user) -> None:
    page = as_user("carol").get("/").text
    for chart in ("decisions", "tools", "productions", "rules", "users"):
        assert f'data-chart="{chart}"' in page
    assert re.search(r"<title>[^<]*hold: [12]</title>", page)
    assert 'id="stat-waiting">2<' in page
    assert "<script" not in page


def test_events_filters_and_search(seeded, as_user) -> None:
    client = as_user("carol")
    everything = client.get("/events").text
    assert everything.count('class="event-row"') == len(seeded.events)
    held = client.get("/events", params={"decision": "hold"}).text
    assert held.count('class="event-row"') == 2
    assert client.get("/events", params={"rule": "pii"}).text.count('class="event-row"') >= 3
    bob = client.get("/events", params={"user": "bob", "production": "harbor-nights"}).text
    assert 'class="event-row"' in bob and ">alice<" not in bob
    found = client.get("/events", params={"q": "gemini unapproved"}).text
    assert found.count('class="event-row"') == 1
    assert client.get("/events", params={"since": "not-a-date"}).status_code == 400


def test_event_page_shows_reasons_fingerprints_and_outcome(seeded, as_user) -> None:
    page = as_user("carol").get(f"/events/{seeded.held_event}").text
    assert "pii.email" in page and "personal data needs written approval" in page
    assert seeded.held_prints[0] in page and seeded.held_approval in page
    assert 'id="decrypt"' in page and PROMPT not in page


def test_reviewer_decrypts_and_the_decryption_is_audited(seeded, stores, as_user) -> None:
    audit, _approvals, _vault = stores
    client = as_user("carol")
    page = client.get(f"/events/{seeded.media_event}").text
    response = client.post(f"/events/{seeded.media_event}/decrypt", data={"csrf": csrf_of(page)})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert 'class="thumb decrypted-image"' in response.text and "data:image/png;base64," in response.text
    assert 'class="decrypted-audio"' in response.text and "data:audio/wav;base64," in response.text
    record_id = re.search(r'id="decrypt-event">([^<]+)<', response.text).group(1)
    record = audit.get(record_id)
    assert record.event.user == "carol" and record.event.decision.reasons[0].entity == seeded.media_event
    assert record.event.endpoint == "audit.decrypt" and record.outcome.status == 200
    text = client.post(f"/events/{seeded.held_event}/decrypt", data={"csrf": csrf_of(page)}).text
    assert PROMPT.replace("@", "&#64;") in text or PROMPT in text


def test_decrypt_without_csrf_is_refused_and_not_recorded(seeded, stores, as_user) -> None:
    audit, _a, _v = stores
    client = as_user("carol")
    before = sum(1 for e in audit.iter_events() if e.event.endpoint == "audit.decrypt")
    assert client.post(f"/events/{seeded.media_event}/decrypt", data={"csrf": "x"}).status_code == 403
    cross = client.post(
        f"/events/{seeded.media_event}/decrypt",
        data={"csrf": csrf_of(client.get("/").text)},
        headers={"origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    assert sum(1 for e in audit.iter_events() if e.event.endpoint == "audit.decrypt") == before


def test_approver_cannot_decrypt(seeded, stores, as_user) -> None:
    audit, _a, _v = stores
    client = as_user("dave")
    page = client.get(f"/events/{seeded.media_event}").text
    assert 'id="no-decrypt"' in page and 'id="decrypt"' not in page
    response = client.post(f"/events/{seeded.media_event}/decrypt", data={"csrf": csrf_of(page)})
    assert response.status_code == 403 and "data:image" not in response.text
    assert not any(e.event.endpoint == "audit.decrypt" for e in audit.iter_events())


def test_approver_sees_only_their_productions(seeded, as_user) -> None:
    client = as_user("dave")
    events = client.get("/events").text
    assert "harbor-nights" in events and ">northern-lights<" not in events.split('id="events"')[1]
    assert client.get(f"/events/{seeded.held_event}").status_code == 404
    approvals = client.get("/approvals").text
    assert seeded.harbor_approval in approvals and seeded.held_approval not in approvals
    assert client.get(f"/approvals/{seeded.held_approval}").status_code == 404


def test_staff_see_only_their_own_holds(seeded, as_user) -> None:
    client = as_user("alice")
    assert client.get("/", follow_redirects=False).headers["location"] == "/approvals"
    assert client.get("/events").status_code == 403
    assert client.get(f"/events/{seeded.held_event}").status_code == 404
    listed = client.get("/approvals").text
    assert seeded.held_approval in listed and seeded.harbor_approval not in listed
    assert client.get("/report/download", params={"production": "northern-lights"}).status_code == 403


def test_staff_state_the_purpose_of_their_hold(seeded, stores, as_user) -> None:
    _audit, approvals, _v = stores
    client = as_user("alice")
    page = client.get(f"/approvals/{seeded.held_approval}").text
    assert 'id="state-purpose"' in page and 'id="approve"' not in page
    response = client.post(
        f"/approvals/{seeded.held_approval}/purpose", data={"csrf": csrf_of(page), "purpose": "episode 3 research"}
    )
    assert response.status_code == 200 and "episode 3 research" in response.text
    assert approvals.get(seeded.held_approval).purpose == "episode 3 research"


def test_approver_of_the_production_approves_in_writing(seeded, stores, as_user) -> None:
    _audit, approvals, _v = stores
    client = as_user("erin")
    page = client.get(f"/approvals/{seeded.held_approval}").text
    response = client.post(
        f"/approvals/{seeded.held_approval}/approve",
        data={"csrf": csrf_of(page), "reason": "interviewee consented", "expires": "2099-12-31"},
    )
    assert response.status_code == 200 and "interviewee consented" in response.text
    assert approvals.find_grant("northern-lights", "pii.email", seeded.held_prints).decided_by == "erin"


def test_other_approver_and_reviewer_cannot_decide(seeded, stores, client) -> None:
    _audit, approvals, _v = stores
    login(client, "carol")
    page = client.get(f"/approvals/{seeded.held_approval}").text
    assert 'id="approve"' not in page
    response = client.post(f"/approvals/{seeded.held_approval}/approve", data={"csrf": csrf_of(page), "reason": "x"})
    assert response.status_code == 403
    assert approvals.get(seeded.held_approval).status is ApprovalStatus.PENDING


def test_deny_needs_a_reason(seeded, stores, as_user) -> None:
    _audit, approvals, _v = stores
    client = as_user("dave")
    page = client.get(f"/approvals/{seeded.harbor_approval}").text
    response = client.post(f"/approvals/{seeded.harbor_approval}/deny", data={"csrf": csrf_of(page), "reason": " "})
    assert response.status_code == 400 and "reason" in response.text
    client.post(f"/approvals/{seeded.harbor_approval}/deny", data={"csrf": csrf_of(page), "reason": "no consent"})
    assert approvals.get(seeded.harbor_approval).status is ApprovalStatus.DENIED


@pytest.mark.parametrize("fmt", ["html", "md", "csv", "json"])
def test_report_download(as_user, fmt) -> None:
    response = as_user("dave").get("/report/download", params={"production": "harbor-nights", "format": fmt})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert "harbor-nights" in response.text


def test_approver_cannot_download_another_productions_report(as_user) -> None:
    response = as_user("dave").get("/report/download", params={"production": "northern-lights", "format": "md"})
    assert response.status_code == 403


def test_logout_needs_csrf_and_ends_the_session(as_user) -> None:
    client = as_user("carol")
    page = client.get("/").text
    assert client.post("/logout", data={"csrf": "nope"}).status_code == 403
    client.post("/logout", data={"csrf": csrf_of(page)})
    assert client.get("/", follow_redirects=False).status_code == 303

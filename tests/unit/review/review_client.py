"""Logging in to the review UI from Starlette's TestClient (the demo passwords are `<name>-demo`)."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

PASSWORDS = {name: f"{name}-demo" for name in ("alice", "bob", "carol", "dave", "erin")}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, name: str, password: str | None = None):
    page = client.get("/login")
    secret = PASSWORDS[name] if password is None else password
    return client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "username": name, "password": secret, "next": "/"},
        follow_redirects=False,
    )

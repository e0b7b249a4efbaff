"""Helpers for the browser tests: logging in through the form, and screenshots as test artefacts."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, name: str) -> None:
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", f"{name}-demo")
    page.click("#login")
    page.wait_for_load_state()

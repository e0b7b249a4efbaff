"""Helpers shared by the deploy tests."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.cli import build_parser

__all__ = ["assert_cli_parses", "pinned"]


def pinned(image: str) -> bool:
    """A tag that is not `latest`, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def assert_cli_parses(argv: Sequence[str]) -> None:
    """The real `greenroom` parser accepts this command line.

    Commands that are not registered yet (e.g. `review`, `registry`) are skipped, so these files can
    name them before they land; once they do, a flag the command does not have fails the test.
    """
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv[0] not in choices:
        return
    parser.parse_args(list(argv))

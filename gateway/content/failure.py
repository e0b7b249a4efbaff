"""Translating third-party decoder failures into the gateway's InspectionError tree.

Pillow, pypdf, PyAV, zipfile and the XML parsers raise whatever they like on hostile input
(ValueError, KeyError, struct.error, AssertionError, OSError...). Decoders wrap every call into
such a library with `translated(what, location)`, so callers only ever see:

    InspectionError
     ├── TooLargeError        MemoryError, or a limit we check
     ├── TooDeepError         RecursionError, or a nesting limit we check
     └── UninspectableError   anything else the library raised

Messages name what failed and where, never the content.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import InspectionError, TooDeepError, TooLargeError, UninspectableError

__all__ = ["INTERNAL_ERROR_PREFIX", "translated", "translated_unexpected"]

INTERNAL_ERROR_PREFIX = "internal decoder error"


@contextmanager
def translated(what: str, location: str) -> Iterator[None]:
    """Run a third-party decoder; whatever it raises becomes an InspectionError about `what`."""
    try:
        yield
    except InspectionError:
        raise
    except MemoryError as exc:
        raise TooLargeError(f"{what} needs too much memory to decode", location=location) from exc
    except RecursionError as exc:
        raise TooDeepError(f"{what} is nested too deeply to decode", location=location) from exc
    except Exception as exc:  # the boundary to third-party decoders: fail closed
        raise UninspectableError(
            f"cannot decode {what} ({type(exc).__name__})", location=location
        ) from exc


@contextmanager
def translated_unexpected(location: str) -> Iterator[None]:
    """Last line of the public entry points: a bug in a decoder still fails closed, typed."""
    try:
        yield
    except InspectionError:
        raise
    except MemoryError as exc:
        raise TooLargeError("decoding needs too much memory", location=location) from exc
    except RecursionError as exc:
        raise TooDeepError("content is nested too deeply to decode", location=location) from exc
    except Exception as exc:  # public entry point: never let another type escape
        raise UninspectableError(
            f"{INTERNAL_ERROR_PREFIX} ({type(exc).__name__})", location=location
        ) from exc

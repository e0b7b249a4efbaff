"""The boundary between the media detectors and the libraries they call (OpenCV, dlib, faiss, PDQ).

Those libraries raise whatever they like (cv2.error, RuntimeError, ValueError, MemoryError...).
Every call into them runs inside `guarded(what, location)`, so a detector only ever raises the
gateway's own errors and the request is blocked, never passed:

    InspectionError               already ours (a decoder's TooLargeError, UninspectableError...)
    TooLargeError                 MemoryError
    UninspectableError            anything else: "image matcher failed (error)"

Messages name the step and the exception type, never content.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import InspectionError, TooLargeError, UninspectableError

__all__ = ["guarded"]


@contextmanager
def guarded(what: str, location: str) -> Iterator[None]:
    """Run third-party matching code; whatever it raises becomes an InspectionError about `what`."""
    try:
        yield
    except InspectionError:
        raise
    except MemoryError as exc:
        raise TooLargeError(f"{what} needs too much memory", location=location) from exc
    except Exception as exc:  # the boundary to native matching libraries: fail closed
        raise UninspectableError(f"{what} failed ({type(exc).__name__})", location=location) from exc

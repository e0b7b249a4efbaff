"""Greenroom's exceptions.

    GreenroomError                 base of everything we raise on purpose
     ├── ConfigError               raised when configuration cannot be loaded or does not validate
     ├── InspectionError           raised when a request cannot be inspected within limits
     │    ├── TooLargeError        raised when a body or a decoded part exceeds a configured limit
     │    ├── TooDeepError         raised when nesting (JSON, archives) exceeds a configured limit
     │    └── UninspectableError   raised when content cannot be decoded (bad or unknown encoding, bad JSON)
     ├── AuthError                 raised when credentials are malformed (wrong ones are a result, not an error)
     ├── CertificateError          raised when the interception CA cannot be created or read
     ├── DetectionError            raised when the detectors cannot run (a media worker died, timed out, won't start)
     ├── AuditError                raised when the audit store cannot be opened, written or read
     │    ├── DuplicateEntryError  raised when an entry collides with a stored one (same replica sequence or event id)
     │    └── IntegrityError       raised when verification finds the audit trail altered, removed or forged
     └── VaultError                raised when a capture cannot be sealed or opened, or a key cannot be used
          ├── KeyShreddedError     raised when a capture's production key was destroyed (shredded or rotated away)
          └── DecryptionError      raised when a capture fails authentication: wrong key, altered bytes, wrong event

A policy violation is never an exception: it is a returned `Decision`.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuthError",
    "CertificateError",
    "ConfigError",
    "DecryptionError",
    "DetectionError",
    "DuplicateEntryError",
    "GreenroomError",
    "InspectionError",
    "IntegrityError",
    "KeyShreddedError",
    "TooDeepError",
    "TooLargeError",
    "UninspectableError",
    "VaultError",
]


class GreenroomError(Exception):
    """Base of every error Greenroom raises on purpose."""


class ConfigError(GreenroomError):
    """Raised when configuration cannot be loaded or does not validate.

    `problems` holds one line per problem, each `file:line: path: message`.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InspectionError(GreenroomError):
    """Raised when a request cannot be inspected; `rule` is the decision rule it maps to."""

    rule = "content.uninspectable"

    def __init__(self, message: str, *, location: str = "") -> None:
        self.location = location
        super().__init__(message)


class TooLargeError(InspectionError):
    """Raised when a body or decoded part exceeds a configured limit."""

    rule = "content.too_large"


class TooDeepError(InspectionError):
    """Raised when nesting (JSON, archives) exceeds a configured limit."""

    rule = "content.too_deep"


class UninspectableError(InspectionError):
    """Raised when content cannot be decoded: bad or unknown encoding, malformed JSON."""

    rule = "content.uninspectable"


class AuthError(GreenroomError):
    """Raised when a credential header is malformed."""


class CertificateError(GreenroomError):
    """Raised when the interception CA cannot be created or read."""


class DetectionError(GreenroomError):
    """Raised when the detectors cannot run: a media worker died, timed out or could not start."""


class AuditError(GreenroomError):
    """Raised when the audit store cannot be opened, written or read (the request must then be stopped)."""


class DuplicateEntryError(AuditError):
    """Raised when an entry collides with a stored one (same replica and sequence number, or event id)."""


class IntegrityError(AuditError):
    """Raised when verification finds the audit trail altered, removed or forged; `problems` lists what."""

    def __init__(self, message: str, problems: tuple[object, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)


class VaultError(GreenroomError):
    """Raised when a capture cannot be sealed or opened, or a key cannot be created or used."""


class KeyShreddedError(VaultError):
    """Raised when a capture's production key was destroyed (shredded, or an old version after rotation)."""


class DecryptionError(VaultError):
    """Raised when a capture fails authentication: wrong key, altered bytes, or moved to another event."""

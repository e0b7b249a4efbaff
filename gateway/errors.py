"""Greenroom's exceptions.

    GreenroomError                 base of everything we raise on purpose
     ├── ConfigError               raised when configuration cannot be loaded or does not validate
     ├── InspectionError           raised when a request cannot be inspected within limits
     │    ├── TooLargeError        raised when a body or a decoded part exceeds a configured limit
     │    ├── TooDeepError         raised when nesting (JSON, archives) exceeds a configured limit
     │    └── UninspectableError   raised when content cannot be decoded (bad or unknown encoding, bad JSON)
     ├── AuthError                 raised when credentials are malformed (wrong ones are a result, not an error)
     └── CertificateError          raised when the interception CA cannot be created or read

A policy violation is never an exception: it is a returned `Decision`.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CertificateError",
    "ConfigError",
    "GreenroomError",
    "InspectionError",
    "TooDeepError",
    "TooLargeError",
    "UninspectableError",
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

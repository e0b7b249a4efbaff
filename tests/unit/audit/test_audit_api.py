"""The audit and vault modules' public names are honest: every name in `__all__` exists."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "gateway.audit",
    "gateway.audit.checkpoint",
    "gateway.audit.integrity",
    "gateway.audit.postgres",
    "gateway.audit.record",
    "gateway.audit.schema",
    "gateway.audit.sqlite",
    "gateway.audit.store",
    "gateway.vault",
    "gateway.commands.audit",
    "gateway.commands.keys",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} declares no public names"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)


def test_the_store_is_an_audit_sink() -> None:
    """AuditStore offers what the proxy calls: record (with optional captures), complete, close."""
    from gateway.audit import AuditSink, AuditStore

    for method in ("record", "complete", "close"):
        assert callable(getattr(AuditStore, method))
    assert hasattr(AuditSink, "record")


def test_errors_are_in_the_tree() -> None:
    from gateway import errors

    assert issubclass(errors.IntegrityError, errors.AuditError)
    assert issubclass(errors.DuplicateEntryError, errors.AuditError)
    assert issubclass(errors.KeyShreddedError, errors.VaultError)
    assert issubclass(errors.DecryptionError, errors.VaultError)
    for cls in (errors.AuditError, errors.VaultError):
        assert issubclass(cls, errors.GreenroomError)
        assert cls.__name__ in errors.__doc__

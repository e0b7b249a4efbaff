"""The public surface of gateway.content: `__all__` is honest, limits are frozen with sane defaults."""

from __future__ import annotations

import dataclasses

import pytest

import gateway.content as content
from gateway.content import ContentLimits, RequestContent


def test_all_names_exist_and_every_public_name_is_listed() -> None:
    public = {name for name in vars(content) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(content, name)).__name__ == "module"}
    assert set(content.__all__) == public - modules
    assert all(hasattr(content, name) for name in content.__all__)


@pytest.mark.parametrize("value_type", [ContentLimits, RequestContent])
def test_value_types_are_frozen_with_slots(value_type: type) -> None:
    params = value_type.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in vars(value_type)


def test_limit_defaults_are_positive() -> None:
    for field in dataclasses.fields(ContentLimits):
        assert getattr(ContentLimits(), field.name) > 0, field.name

"""Configuration: pydantic models and the YAML loader with file:line errors."""

from .loader import CATALOG_DIR, LoadedConfig, load_config, load_tool_catalog
from .models import (
    Action,
    Capability,
    ErrorFormat,
    GatewayConfig,
    GatewaySettings,
    Production,
    Role,
    Tool,
    User,
)

__all__ = [
    "CATALOG_DIR",
    "Action",
    "Capability",
    "ErrorFormat",
    "GatewayConfig",
    "GatewaySettings",
    "LoadedConfig",
    "Production",
    "Role",
    "Tool",
    "User",
    "load_config",
    "load_tool_catalog",
]

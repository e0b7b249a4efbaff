"""Talent and IP registry: files under the config dir, compiled into a searchable media index.

    load_index(data_dir, config_dir | LoadedConfig | RegistrySource) -> RegistryIndex
        the index for the registry as it is now; rebuilt when any YAML or media file changed
    build_index(config_dir | LoadedConfig | RegistrySource, data_dir) -> RegistryIndex
        always recompute (`greenroom registry build`)

A RegistryIndex is read-only after loading and safe to share between threads.
"""

from typing import TYPE_CHECKING, Any

from .source import INDEX_FORMAT, RegistrySource, registry_digest, registry_source

if TYPE_CHECKING:
    from .build import build_index, index_folder, load_index
    from .index import FaceBank, HashHit, ImageBank, LocalHit, RegistryIndex, VoiceBank

_LAZY = {
    "build_index": "build", "index_folder": "build", "load_index": "build",
    "FaceBank": "index", "HashHit": "index", "ImageBank": "index", "LocalHit": "index",
    "RegistryIndex": "index", "VoiceBank": "index",
}  # fmt: skip
"""imported on first use: they pull in numpy, faiss, OpenCV and dlib, which the proxy process only
needs when it builds or searches the index itself (see gateway.detect.pool)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "INDEX_FORMAT",
    "FaceBank",
    "HashHit",
    "ImageBank",
    "LocalHit",
    "RegistryIndex",
    "RegistrySource",
    "VoiceBank",
    "build_index",
    "index_folder",
    "load_index",
    "registry_digest",
    "registry_source",
]

"""Talent and IP registry: files under the config dir, compiled into a searchable media index.

    load_index(data_dir, config_dir | LoadedConfig | RegistrySource) -> RegistryIndex
        the index for the registry as it is now; rebuilt when any YAML or media file changed
    build_index(config_dir | LoadedConfig | RegistrySource, data_dir) -> RegistryIndex
        always recompute (`greenroom registry build`)

A RegistryIndex is read-only after loading and safe to share between threads.
"""

from .build import build_index, index_folder, load_index
from .index import FaceBank, HashHit, ImageBank, LocalHit, RegistryIndex, VoiceBank
from .source import INDEX_FORMAT, RegistrySource, registry_digest, registry_source

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

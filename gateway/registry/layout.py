"""Where the registry index lives in the data dir, and a cheap check that it is there and current.

Kept free of the matching libraries (numpy, faiss, OpenCV, dlib) so that the proxy process can
decide whether the index must be rebuilt without loading any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["INDEX_FOLDER", "MANIFEST", "index_folder", "index_is_complete"]

INDEX_FOLDER = "registry"
MANIFEST = "manifest.json"
_ARRAYS = ("images.npz", "faces.npz", "voices.npz")


def index_folder(data_dir: str | Path, digest: str) -> Path:
    return Path(data_dir) / INDEX_FOLDER / f"index-{digest[:32]}"


def index_is_complete(data_dir: str | Path, digest: str) -> bool:
    """Whether the index for `digest` was published whole (manifest naming it, every array file present).

    A file damaged after publishing is caught where the index is read (and then rebuilt).
    """
    folder = index_folder(data_dir, digest)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("digest") == digest and all(
        (folder / name).is_file() for name in _ARRAYS
    )

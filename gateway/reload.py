"""Hot reload on file change: poll the configuration directory and reload when it changes.

`ConfigWatcher` takes a cheap snapshot of the configuration directory every `interval` seconds
(each file's relative path, size, mtime and inode: no inotify, so it works the same on a laptop,
an NFS share and a Kubernetes ConfigMap volume, whose updates swap a `..data` symlink). When the
snapshot differs it waits `settle` seconds for the writer to finish, then calls
`Runtime.reload()`, which decides: it loads and validates the directory, compares the content
digest with the serving generation's, and swaps atomically only for a valid, different
configuration. An invalid one is refused and logged there, `Runtime.reload_failures` counts it,
and the last good generation keeps serving.

    watcher = ConfigWatcher(runtime, interval=2.0).start()   # a daemon thread
    ...
    watcher.stop()

`check()` runs one poll synchronously (tests, or a caller with its own scheduler).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import structlog

from gateway.runtime import Runtime

__all__ = ["ConfigWatcher", "Snapshot", "snapshot"]

log = structlog.get_logger("greenroom.reload")

Snapshot = frozenset[tuple[str, int, int, int]]
"""(relative path, size, mtime in ns, inode) of every file under the configuration directory."""


def snapshot(directory: Path) -> Snapshot:
    """What the directory holds now, following symlinks (ConfigMap volumes are symlink farms).

    A missing or unreadable directory is an empty snapshot: the change is still seen, and the
    reload that follows reports the problem.
    """
    entries: set[tuple[str, int, int, int]] = set()
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        try:
            st_root = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st_root.st_dev, st_root.st_ino) in seen:  # a symlink loop, or a second path to the same folder
            dirs[:] = []
            continue
        seen.add((st_root.st_dev, st_root.st_ino))
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:  # removed between listing and stat, or a dangling symlink
                continue
            entries.add((os.path.relpath(path, directory), st.st_size, st.st_mtime_ns, st.st_ino))
    return frozenset(entries)


class ConfigWatcher:
    """Polls `runtime.config_dir` and calls `runtime.reload()` when its files change."""

    def __init__(self, runtime: Runtime, interval: float = 2.0, settle: float | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive; do not start a watcher to disable reloading")
        self.runtime = runtime
        self.interval = interval
        self.settle = min(0.5, interval / 2) if settle is None else settle
        self.changes = 0
        """file changes seen (each one leads to a reload attempt)"""
        self.reloads = 0
        """reloads that put a new generation in service"""
        self.refusals = 0
        """reload attempts that kept the old generation: invalid configuration or an unexpected error"""
        self._last = snapshot(runtime.config_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One poll; True when a new generation is serving afterwards."""
        current = snapshot(self.runtime.config_dir)
        if current == self._last:
            return False
        if self.settle > 0:
            self._stop.wait(self.settle)
            settled = snapshot(self.runtime.config_dir)
            if settled != current:  # still being written: look again at the next poll
                return False
        self._last = current
        self.changes += 1
        failures_before = self.runtime.reload_failures
        log.info("config_change_detected", files=len(current), generation=self.runtime.current.number)
        try:
            swapped = self.runtime.reload()
        except Exception as exc:  # noqa: BLE001 - the watcher thread must outlive any reload bug
            self.refusals += 1
            log.error("config_reload_failed", error=type(exc).__name__, generation=self.runtime.current.number)
            return False
        if swapped:
            self.reloads += 1
        elif self.runtime.reload_failures > failures_before:
            self.refusals += 1
        return swapped

    def start(self) -> ConfigWatcher:
        """Poll in a daemon thread until `stop()`; returns self."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="greenroom-config-watcher", daemon=True)
            self._thread.start()
            log.info("config_watch_started", directory=str(self.runtime.config_dir), interval=self.interval)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for the thread (a reload in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

"""One configuration generation, compiled for the hot path, and swapped atomically on reload.

A `Generation` bundles everything derived from one validated configuration (catalog lookups,
authenticator with its credential cache, productions by id). The proxy reads `Runtime.current`
once per request, so a request never sees half of an old configuration and half of a new one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway.config import LoadedConfig, load_config
from gateway.config.models import GatewayConfig, Production
from gateway.detection import Detection, PoolSettings, load_detection
from gateway.errors import ConfigError, GreenroomError
from gateway.identity import Authenticator
from gateway.inspection import content_limits
from gateway.metrics import Metrics
from gateway.tools.catalog import Catalog

__all__ = ["Generation", "Runtime"]

log = structlog.get_logger("greenroom.runtime")


@dataclass(frozen=True, slots=True)
class Generation:
    number: int
    loaded: LoadedConfig
    catalog: Catalog
    authenticator: Authenticator
    productions: dict[str, Production]
    detection: Detection | None = None
    """None only where detection is switched off on purpose (unit tests of the proxy glue)."""
    loaded_at: float = field(default_factory=time.time)

    @property
    def config(self) -> GatewayConfig:
        return self.loaded.config

    @classmethod
    def build(cls, number: int, loaded: LoadedConfig, data_dir: Path | None = None,
              metrics: Metrics | None = None, *, media_pool: bool = False,
              previous: Detection | None = None) -> Generation:
        """Compile a configuration; with a data dir, also load the registry index and every detector.

        `media_pool`: media detectors in worker processes (the gateway); otherwise in this process
        (the CLI, tests). `previous`: the serving generation's detection, whose workers are kept
        when the registry and the limits did not change.
        """
        config = loaded.config
        detection = None
        if data_dir is not None:
            limits = content_limits(config.settings.limits)
            pool = _pool_settings(config) if media_pool else None
            detection = load_detection(loaded, data_dir, limits, metrics, pool,
                                       reuse=previous.pool if previous is not None else None)
        return cls(
            number=number,
            loaded=loaded,
            catalog=Catalog(config.tools),
            authenticator=Authenticator(config),
            productions={p.id: p for p in config.productions},
            detection=detection,
        )


class Runtime:
    """Holds the current generation; `reload()` validates first and keeps the old one on failure."""

    def __init__(self, config_dir: str | Path, data_dir: str | Path, *, detection: bool = True,
                 metrics: Metrics | None = None, media_pool: bool = False) -> None:
        self.config_dir = Path(config_dir)
        self.data_dir = Path(data_dir)
        self._detection = detection
        self._media_pool = media_pool
        self._metrics = metrics
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self.current = self._build(1, load_config(self.config_dir))
        self.reload_failures = 0
        self.last_reload_error = ""

    def _build(self, number: int, loaded: LoadedConfig, previous: Generation | None = None) -> Generation:
        data_dir = self.data_dir if self._detection else None
        return Generation.build(number, loaded, data_dir, self._metrics, media_pool=self._media_pool,
                                previous=previous.detection if previous is not None else None)

    def close(self) -> None:
        """Stop the serving generation's media workers (the gateway is shutting down)."""
        if self.current.detection is not None:
            self.current.detection.close()

    def reload(self) -> bool:
        """Load the configuration again; True when a new generation is serving.

        Whole reloads are serialised (SIGHUP and the file watcher can overlap), so an older load can
        never be swapped in after a newer one.
        """
        with self._reloading:
            return self._reload()

    def _reload(self) -> bool:
        try:
            loaded = load_config(self.config_dir)
        except ConfigError as exc:
            with self._lock:
                self.reload_failures += 1
                self.last_reload_error = f"{len(exc.problems)} problem(s)"
            log.error("config_reload_refused", problems=len(exc.problems), first=exc.problems[0][:300])
            return False
        with self._lock:
            if loaded.digest == self.current.loaded.digest:
                return False
        try:
            generation = self._build(self.current.number + 1, loaded, self.current)
        except GreenroomError as exc:
            with self._lock:
                self.reload_failures += 1
                self.last_reload_error = type(exc).__name__
            log.error("config_reload_refused", problems=1, first=str(exc)[:300])
            return False
        with self._lock:
            retired, self.current = self.current, generation
            self.last_reload_error = ""
        _retire(retired, generation)
        log.info("config_reloaded", generation=self.current.number, digest=loaded.digest[:12])
        return True


_RETIRE_GRACE_SECONDS = 300.0
"""how long a replaced generation's media workers stay for requests that started under it."""


def _retire(old: Generation, new: Generation) -> None:
    """Stop the replaced generation's media workers later, unless the new generation kept them."""
    pool = old.detection.pool if old.detection is not None else None
    if pool is None or (new.detection is not None and new.detection.pool is pool):
        return
    timer = threading.Timer(_RETIRE_GRACE_SECONDS, pool.close)
    timer.daemon = True
    timer.start()


def _pool_settings(config: GatewayConfig) -> PoolSettings:
    media = config.settings.media_workers
    return PoolSettings(workers=media.workers or _usable_cpus(), nice=media.nice, idle_seconds=media.idle_seconds,
                        timeout_seconds=media.timeout_seconds)


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)

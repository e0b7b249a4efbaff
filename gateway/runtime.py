"""One configuration generation, compiled for the hot path, and swapped atomically on reload.

A `Generation` bundles everything derived from one validated configuration (catalog lookups,
authenticator with its credential cache, productions by id). The proxy reads `Runtime.current`
once per request, so a request never sees half of an old configuration and half of a new one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway.config import LoadedConfig, load_config
from gateway.config.models import GatewayConfig, Production
from gateway.detection import Detection, load_detection
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
              metrics: Metrics | None = None) -> Generation:
        """Compile a configuration; with a data dir, also load the registry index and every detector."""
        config = loaded.config
        detection = None
        if data_dir is not None:
            limits = content_limits(config.settings.limits)
            detection = load_detection(loaded, data_dir, limits, metrics)
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
                 metrics: Metrics | None = None) -> None:
        self.config_dir = Path(config_dir)
        self.data_dir = Path(data_dir)
        self._detection = detection
        self._metrics = metrics
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self.current = self._build(1, load_config(self.config_dir))
        self.reload_failures = 0
        self.last_reload_error = ""

    def _build(self, number: int, loaded: LoadedConfig) -> Generation:
        data_dir = self.data_dir if self._detection else None
        return Generation.build(number, loaded, data_dir, self._metrics)

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
            generation = self._build(self.current.number + 1, loaded)
        except GreenroomError as exc:
            with self._lock:
                self.reload_failures += 1
                self.last_reload_error = type(exc).__name__
            log.error("config_reload_refused", problems=1, first=str(exc)[:300])
            return False
        with self._lock:
            self.current = generation
            self.last_reload_error = ""
        log.info("config_reloaded", generation=self.current.number, digest=loaded.digest[:12])
        return True

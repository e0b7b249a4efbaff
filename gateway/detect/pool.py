"""Media detectors in worker processes: images, faces and voices never hold the proxy's event loop.

    MediaPool(loaded, data_dir, limits, settings).detect(media, context) -> MediaResult
        blocking; call it from a worker thread (the proxy inspects media bodies off the loop)

Why processes: face, image and voice matching are CPU-bound for tens to hundreds of milliseconds
per item, and the Python parts of them hold the GIL, so in the proxy's own process one user's 1 MP
photo stalls every other user's text request. In worker processes they cannot; and the workers
run at a lower CPU priority (`nice`, default +10), so when the gateway's cores are busy the
interactive text traffic goes first and media requests take longer, not the other way round.

Lifecycle: no worker runs until the first media item arrives (a gateway that only sees text never
loads dlib's models, the faiss index or the voice encoder); `workers` processes are then started
(spawned, never forked from the threaded proxy) and each loads the registry index and the
detectors once. After `idle_seconds` without media the workers exit and give their memory back;
the next media item starts them again.

Failures close: a detector error raises in the caller exactly as in-process detection does; a
worker that dies (or a pool that cannot start) raises DetectionError; an item that takes longer
than `timeout_seconds` raises DetectionError and the workers are replaced (a stuck worker cannot be
interrupted, only killed). The proxy turns each of these into a blocked request with an audit record.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import structlog

from gateway.config import LoadedConfig
from gateway.content import ContentLimits, MediaItem
from gateway.errors import DetectionError

from .finding import DetectionContext, Detector, Finding

__all__ = ["MediaPool", "MediaResult", "PoolSettings"]

log = structlog.get_logger("greenroom.detection")


@dataclass(frozen=True, slots=True)
class PoolSettings:
    workers: int
    nice: int = 10
    idle_seconds: float = 600.0
    timeout_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class MediaResult:
    """What the media detectors found, and how long each took (milliseconds, in the worker)."""

    findings: tuple[Finding, ...]
    timings: tuple[tuple[str, float], ...]


_SLOWEST = "face"
_SPLIT = (True, False)
"""one request on two free workers: the slowest detector in one, every other detector in the other."""

# --- inside a worker ---------------------------------------------------------------------------------

_detectors: tuple[Detector, ...] = ()


def _start_worker(loaded: LoadedConfig, data_dir: str, limits: ContentLimits, nice: int) -> None:
    """Worker initializer: lower priority, then the registry index and the detectors.

    The detectors pin their native libraries to one thread themselves (faiss, OpenCV, BLAS): the
    parallelism is the pool's.
    """
    global _detectors
    if nice:
        with contextlib.suppress(OSError):  # not allowed here: run at the proxy's priority rather than not at all
            os.nice(nice)
    from gateway.detection import media_detectors

    _detectors = media_detectors(loaded, Path(data_dir), limits)


def _detect(media: tuple[MediaItem, ...], context: DetectionContext, slowest: bool | None = None) -> MediaResult:
    """Every detector (`slowest` None), only the slowest one (True), or every other one (False)."""
    from gateway.content import Inputs

    inputs = Inputs(media=media)
    found: list[Finding] = []
    timings: list[tuple[str, float]] = []
    for detector in _detectors:
        if slowest is not None and (detector.name == _SLOWEST) != slowest:
            continue
        started = time.perf_counter()
        found += detector.detect(inputs, context)
        timings.append((detector.name, (time.perf_counter() - started) * 1000))
    return MediaResult(tuple(found), tuple(timings))


def _submitted(
    executor: ProcessPoolExecutor, items: tuple[MediaItem, ...], context: DetectionContext,
    parts: tuple[bool | None, ...],
) -> list[Future[MediaResult]]:
    """Queue the detection; an executor shut down meanwhile (another request's timeout replaced the
    workers) is a DetectionError. A RuntimeError a detector raises in a worker is not caught here: it
    reaches the caller as itself, like any detector error."""
    try:
        return [executor.submit(_detect, items, context, part) for part in parts]
    except BrokenProcessPool:  # a RuntimeError too: a dead worker, which the caller replaces
        raise
    except RuntimeError as exc:  # "cannot schedule new futures after shutdown"
        raise DetectionError("media detection was interrupted while the workers were replaced") from exc


def _ready() -> int:
    return os.getpid()


# --- in the proxy ------------------------------------------------------------------------------------


class MediaPool:
    """Worker processes running the media detectors of one configuration generation."""

    def __init__(
        self, loaded: LoadedConfig, data_dir: Path, limits: ContentLimits, settings: PoolSettings, key: object = None
    ) -> None:
        if settings.workers < 1:
            raise ValueError("a media pool needs at least one worker")
        self._args = (loaded, str(data_dir), limits, settings.nice)
        self.settings = settings
        self.key = key
        """what the workers' detectors depend on (registry digest, data dir, limits, settings): equal keys
        mean a new configuration generation can keep these workers."""
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._busy = 0
        self._last_used = 0.0
        self._closed = False
        self._reaper: threading.Thread | None = None
        self.starts = 0
        """how many times workers were started (first media, after idling, after a failure)."""

    @property
    def running(self) -> bool:
        return self._executor is not None

    def detect(self, media: Sequence[MediaItem], context: DetectionContext) -> MediaResult:
        """Run every media detector over `media` in the workers; raises what a detector raised.

        When at least two workers are free, the face detector (the slowest) runs in one and the
        others in another, so one request's latency is the slower half rather than the sum; each
        worker decodes the media itself. On a busy pool everything runs in one worker (no decode
        is duplicated when the CPUs are needed for other requests).
        """
        executor, split = self._acquire(tasks=len(_SPLIT))
        items = tuple(media)
        try:
            parts: tuple[bool | None, ...] = _SPLIT if split else (None,)
            futures = _submitted(executor, items, context, parts)
            deadline = time.monotonic() + self.settings.timeout_seconds
            results = [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
            return MediaResult(tuple(f for r in results for f in r.findings),
                               tuple(t for r in results for t in r.timings))
        except FutureTimeout as exc:
            self._discard(executor, kill=True)
            raise DetectionError(
                f"media detection did not finish within {self.settings.timeout_seconds:g}s; workers replaced"
            ) from exc
        except BrokenProcessPool as exc:
            self._discard(executor, kill=True)
            raise DetectionError("a media detection worker stopped unexpectedly; workers replaced") from exc
        except CancelledError as exc:  # the executor was replaced under us (another request's timeout)
            raise DetectionError("media detection was interrupted while the workers were replaced") from exc
        finally:
            self._release(len(_SPLIT) if split else 1)

    def warm(self) -> None:
        """Start the workers now and wait until each has loaded its detectors."""
        executor, _ = self._acquire(tasks=1)
        try:
            for future in [executor.submit(_ready) for _ in range(self.settings.workers)]:
                future.result(timeout=self.settings.timeout_seconds)
        except BrokenProcessPool as exc:
            self._discard(executor, kill=True)
            raise DetectionError("the media detection workers could not start") from exc
        finally:
            self._release(1)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    # --- lifecycle ----------------------------------------------------------------------------

    def _acquire(self, tasks: int) -> tuple[ProcessPoolExecutor, bool]:
        """The executor, and whether `tasks` workers are free for this call (else it uses one)."""
        with self._lock:
            if self._closed:
                raise DetectionError("the media detection pool is closed")
            if self._executor is None:
                self._executor = self._start()
            split = tasks > 1 and self._busy + tasks <= self.settings.workers
            self._busy += tasks if split else 1
            return self._executor, split

    def _release(self, tasks: int) -> None:
        with self._lock:
            self._busy -= tasks
            self._last_used = time.monotonic()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            max_workers=self.settings.workers,
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=self._args,
        )
        self.starts += 1
        log.info("media_workers_started", workers=self.settings.workers, nice=self.settings.nice)
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap_when_idle, name="greenroom-media-reaper", daemon=True)
            self._reaper.start()
        return executor

    def _discard(self, executor: ProcessPoolExecutor, *, kill: bool) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        if kill:
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def _reap_when_idle(self) -> None:
        """Stop the workers after `idle_seconds` without media; exit once they are stopped."""
        period = max(0.05, min(self.settings.idle_seconds / 4, 30.0))
        while True:
            time.sleep(period)
            with self._lock:
                executor = self._executor
                if executor is None or self._closed:
                    self._reaper = None
                    return
                idle = self._busy == 0 and time.monotonic() - self._last_used >= self.settings.idle_seconds
                if not idle:
                    continue
                self._executor = None
                self._reaper = None
            executor.shutdown(wait=True)
            log.info("media_workers_stopped", reason="idle", idle_seconds=self.settings.idle_seconds)
            return

"""The detectors of one configuration generation, run over a request's Inputs.

Text detectors (registered names and titles, production secrets, script pages, personal data) run
on every request; media detectors (IP images, faces, voices) only when there is media. Each detector
that fails raises, and the request is then blocked (`gateway.error`): a check that could not run is
never a pass. Findings become reasons through the production's consents and licences
(`policy.finding_reasons`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import structlog

from gateway.config import LoadedConfig
from gateway.config.models import Capability, Production
from gateway.content import ContentLimits, Inputs, TextItem
from gateway.content.unescape import UNESCAPED, without_suffix
from gateway.decision import Reason
from gateway.detect.finding import DetectionContext, Detector, Finding
from gateway.detect.pool import MediaPool, PoolSettings
from gateway.errors import DetectionError
from gateway.metrics import Metrics
from gateway.policy import finding_reasons

__all__ = ["Detection", "PoolSettings", "ensure_index", "load_detection", "media_detectors", "text_detectors"]

log = structlog.get_logger("greenroom.detection")


@dataclass(frozen=True, slots=True)
class Detection:
    text: Sequence[Detector]
    media: Sequence[Detector]
    metrics: Metrics | None = None
    pool: MediaPool | None = None
    """when set, media detectors run in its worker processes and `media` is empty here."""

    def findings(self, inputs: Inputs, production: Production, capability: Capability) -> list[Finding]:
        context = DetectionContext(capability=capability.value, production=production.id,
                                   confidential_terms=tuple(t.term for t in production.confidential_terms))
        found: list[Finding] = []
        for detector in self.text:
            found += self._timed(detector, inputs, context)
        found = without_echoes(found, inputs.texts)
        if not inputs.media:
            return found
        if self.pool is None:
            for detector in self.media:
                found += self._timed(detector, inputs, context)
            return found
        result = self.pool.detect(inputs.media, context)
        for name, ms in result.timings:
            self._observe(name, ms)
        return found + list(result.findings)

    def reasons(self, inputs: Inputs, production: Production, capability: Capability) -> list[Reason]:
        """Every finding in `inputs`, judged by the production's rules."""
        if inputs.empty:
            return []
        return finding_reasons(self.findings(inputs, production, capability), production, capability,
                               dt.date.today())

    def close(self) -> None:
        """Stop the media workers (the gateway is shutting down)."""
        if self.pool is not None:
            self.pool.close()

    def _timed(self, detector: Detector, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        started = time.perf_counter()
        found = detector.detect(inputs, context)
        self._observe(detector.name, (time.perf_counter() - started) * 1000)
        return found

    def _observe(self, name: str, ms: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_ms("greenroom_detector_ms", "time per detector per request", ms, detector=name)


def without_echoes(found: list[Finding], items: Sequence[TextItem] = ()) -> list[Finding]:
    """Drop a finding in an unescaped variant of a text (`gateway.content.unescape`) that repeats one
    in the text as sent: same kind and entity at the original location and, when both texts are
    among `items` and both findings have spans, the same matched value (case and spacing aside). There it can be
    redacted in place. What only the decoding revealed stays (it cannot be redacted in place:
    redaction refuses it, which blocks), including a second value of the same kind hidden by escapes."""
    if not any(f.location.endswith(UNESCAPED) for f in found):
        return found
    texts = {item.location: item.text for item in items}
    originals: dict[tuple[str, str, str], set[str | None]] = {}
    for f in found:
        if not f.location.endswith(UNESCAPED):
            originals.setdefault((f.kind, f.entity, f.location), set()).add(_value(f, texts))
    return [f for f in found if not f.location.endswith(UNESCAPED) or not _echoes(f, originals, texts)]


def _echoes(finding: Finding, originals: dict[tuple[str, str, str], set[str | None]],
            texts: Mapping[str, str]) -> bool:
    values = originals.get((finding.kind, finding.entity, without_suffix(finding.location)))
    if values is None:
        return False
    value = _value(finding, texts)
    return value is None or None in values or value in values


def _value(finding: Finding, texts: Mapping[str, str]) -> str | None:
    """The matched text, folded for comparison; None when unknown (no text or no span)."""
    if finding.span is None or finding.location not in texts:
        return None
    start, end = finding.span
    return " ".join(texts[finding.location][start:end].casefold().split())


def load_detection(loaded: LoadedConfig, data_dir: Path, limits: ContentLimits,
                   metrics: Metrics | None = None, pool: PoolSettings | None = None,
                   reuse: MediaPool | None = None) -> Detection:
    """Build every detector for a configuration (the registry index is loaded, or rebuilt when stale).

    With `pool`, the media detectors live in worker processes (`gateway.detect.pool`): the index is
    made current here in a short-lived child process, and the workers load it when media arrives.
    `reuse`: a pool whose workers already serve this registry index with these limits and settings.
    """
    started = time.perf_counter()
    text = text_detectors(loaded)
    if pool is None:
        detection = Detection(text, media_detectors(loaded, data_dir, limits), metrics)
    else:
        digest = ensure_index(loaded, data_dir)
        key = (digest, str(data_dir), limits, pool)
        media_pool = reuse if reuse is not None and reuse.key == key else MediaPool(loaded, data_dir, limits, pool, key)
        detection = Detection(text, (), metrics, media_pool)
    log.info("detectors_loaded", ms=round((time.perf_counter() - started) * 1000),
             talent=len(loaded.config.registry.talent), ip=len(loaded.config.registry.ip),
             media_workers=pool.workers if pool else 0)
    return detection


def text_detectors(loaded: LoadedConfig) -> tuple[Detector, ...]:
    """Names, titles and terms, production secrets, script pages, personal data: cheap, run in the proxy."""
    from gateway.detect.pii import PiiDetector
    from gateway.detect.script import ScriptDetector
    from gateway.detect.text import NameDetector, TermDetector

    config = loaded.config
    return (
        NameDetector.from_config(config),
        TermDetector.from_config(config),
        ScriptDetector.from_config(config, loaded.directory),
        PiiDetector(),
    )


def media_detectors(loaded: LoadedConfig, data_dir: Path, limits: ContentLimits) -> tuple[Detector, ...]:
    """IP images, faces, voices over the registry index (loaded, or rebuilt when stale)."""
    from gateway.detect.face import FaceDetector
    from gateway.detect.image import IpImageDetector
    from gateway.detect.voice import VoiceDetector
    from gateway.registry import load_index

    index = load_index(data_dir, loaded)
    return (
        IpImageDetector(index.images, limits),
        FaceDetector(index.faces, limits),
        VoiceDetector(index.voices, limits),
    )


def ensure_index(loaded: LoadedConfig, data_dir: Path) -> str:
    """Make the registry index current without loading the matching libraries into this process.

    A stale index is rebuilt in a child process (face and voice models, faiss and OpenCV stay out
    of the proxy); its ConfigError (a photo without a face, an unreadable file) is raised here.
    """
    from gateway.registry.layout import index_is_complete
    from gateway.registry.source import registry_digest, registry_source

    digest = registry_digest(registry_source(loaded))
    if index_is_complete(data_dir, digest):
        return digest
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
        try:
            child.submit(_build_index, loaded, str(data_dir)).result()
        except BrokenProcessPool as exc:
            raise DetectionError("the registry index build stopped unexpectedly") from exc
    return digest


def _build_index(loaded: LoadedConfig, data_dir: str) -> None:
    from gateway.registry import load_index

    load_index(Path(data_dir), loaded)

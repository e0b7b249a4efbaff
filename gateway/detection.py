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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.config import LoadedConfig
from gateway.config.models import Capability, Production
from gateway.content import ContentLimits, Inputs
from gateway.decision import Reason
from gateway.detect.finding import DetectionContext, Detector, Finding
from gateway.metrics import Metrics
from gateway.policy import finding_reasons

__all__ = ["Detection", "load_detection"]

log = structlog.get_logger("greenroom.detection")


@dataclass(frozen=True, slots=True)
class Detection:
    text: Sequence[Detector]
    media: Sequence[Detector]
    metrics: Metrics | None = None

    def findings(self, inputs: Inputs, production: Production, capability: Capability) -> list[Finding]:
        context = DetectionContext(capability=capability.value, production=production.id,
                                   confidential_terms=tuple(t.term for t in production.confidential_terms))
        found: list[Finding] = []
        detectors = [*self.text, *(self.media if inputs.media else ())]
        for detector in detectors:
            started = time.perf_counter()
            found += detector.detect(inputs, context)
            if self.metrics is not None:
                self.metrics.observe_ms("greenroom_detector_ms", "time per detector per request",
                                        (time.perf_counter() - started) * 1000, detector=detector.name)
        return found

    def reasons(self, inputs: Inputs, production: Production, capability: Capability) -> list[Reason]:
        """Every finding in `inputs`, judged by the production's rules."""
        if inputs.empty:
            return []
        return finding_reasons(self.findings(inputs, production, capability), production, capability,
                               dt.date.today())


def load_detection(loaded: LoadedConfig, data_dir: Path, limits: ContentLimits,
                   metrics: Metrics | None = None) -> Detection:
    """Build every detector for a configuration (the registry index is loaded, or rebuilt when stale)."""
    from gateway.detect.face import FaceDetector
    from gateway.detect.image import IpImageDetector
    from gateway.detect.pii import PiiDetector
    from gateway.detect.script import ScriptDetector
    from gateway.detect.text import NameDetector, TermDetector
    from gateway.detect.voice import VoiceDetector
    from gateway.registry import load_index

    config = loaded.config
    started = time.perf_counter()
    index = load_index(data_dir, loaded)
    text: list[Detector] = [
        NameDetector.from_config(config),
        TermDetector.from_config(config),
        ScriptDetector.from_config(config, loaded.directory),
        PiiDetector(),
    ]
    media: list[Detector] = [
        IpImageDetector(index.images, limits),
        FaceDetector(index.faces, limits),
        VoiceDetector(index.voices, limits),
    ]
    log.info("detectors_loaded", ms=round((time.perf_counter() - started) * 1000),
             talent=len(config.registry.talent), ip=len(config.registry.ip))
    return Detection(tuple(text), tuple(media), metrics)

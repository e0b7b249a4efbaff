"""Registered talent's voices in uploaded audio (and the audio track of videos).

    VoiceDetector(index.voices, limits).detect(inputs, context)
        -> [Finding(kind="voice", entity=talent id)]   speech within `review_similarity` of a talent
         | [Finding(kind="voice_unknown", entity="")]  speech that matches no registered talent

Audio is decoded to 16 kHz mono, volume-normalised and trimmed to its voiced windows (webrtcvad).
Under `min_speech_seconds` of speech, or too little pitched sound in it (under `min_periodic` of its
30 ms windows: webrtcvad alone calls white noise speech) → nothing to report. The speech is cut into stretches of
`segment_seconds` (at most `max_segments`, spread over the whole recording), each embedded with the
GE2E encoder (numpy port of Resemblyzer) and compared by cosine with each talent's enrolment.
Cosine ≥ `match_similarity` (0.85) is a match, ≥ `review_similarity` (0.75) is reported for review
(detail says `review`); score is the cosine. A voice match is a strong signal, not proof: GE2E is
defeated by pitch shifting and telephone band-limiting (see shared/reference/media-matching.md).

Thread-safe: the encoder is immutable numpy.
"""

from __future__ import annotations

import io

import av
import numpy as np

from gateway.content import ContentLimits, Inputs, MediaItem, decode_audio
from gateway.registry import VoiceBank

from .finding import DetectionContext, Finding
from .media_guard import guarded
from .media_voice import SpeakerEncoder, Speech, preprocess

__all__ = ["VoiceDetector"]


class VoiceDetector:
    """Finds registered talent's voices and flags unknown speech."""

    name = "voice"

    def __init__(
        self,
        bank: VoiceBank,
        limits: ContentLimits | None = None,
        *,
        match_similarity: float = 0.85,
        review_similarity: float = 0.75,
        min_speech_seconds: float = 1.0,
        min_periodic: float = 0.2,
        segment_seconds: float = 8.0,
        max_segments: int = 16,
        encoder: SpeakerEncoder | None = None,
    ) -> None:
        self.bank = bank
        self.limits = limits or ContentLimits()
        self.match_similarity = match_similarity
        self.review_similarity = min(review_similarity, match_similarity)
        self.min_speech_seconds = min_speech_seconds
        self.min_periodic = min_periodic
        self.segment_seconds = segment_seconds
        self.max_segments = max_segments
        self.encoder = encoder or SpeakerEncoder()

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        findings: list[Finding] = []
        for item in inputs.media:
            if not _carries_audio(item):
                continue
            pcm = decode_audio(item, self.limits)
            with guarded("voice matcher", item.location):
                findings += self.voices_in(pcm, item.location)
        return findings

    def voices_in(self, pcm: np.ndarray, location: str) -> list[Finding]:
        """Findings for one recording (mono float32, 16 kHz)."""
        speech = preprocess(pcm)
        if speech.seconds < self.min_speech_seconds or speech.periodic < self.min_periodic:
            return []
        segments = self.encoder.embed_segments(speech.samples, self.segment_seconds, self.max_segments)
        best: dict[str, float] = {}
        for embedding in segments:
            for talent, similarity in self.bank.similarities(embedding):
                best[talent] = max(best.get(talent, -1.0), similarity)
        heard = _heard(speech, len(segments))
        findings = [
            self._finding("voice", talent, similarity, location, f"{heard}, cosine {similarity:.2f}, {verdict}")
            for talent, similarity in best.items()
            if (verdict := self._verdict(similarity))
        ]
        if findings:
            return findings
        closest = max(best.values(), default=0.0)
        return [self._finding("voice_unknown", "", 1.0, location, f"{heard}, closest cosine {closest:.2f}")]

    def _verdict(self, similarity: float) -> str:
        if similarity >= self.match_similarity:
            return "match"
        if similarity >= self.review_similarity:
            return "review"
        return ""

    def _finding(self, kind: str, entity: str, score: float, location: str, detail: str) -> Finding:
        return Finding(
            kind="voice" if kind == "voice" else "voice_unknown",
            entity=entity,
            location=location,
            score=round(float(score), 4),
            detector=self.name,
            detail=detail,
        )


def _heard(speech: Speech, segments: int) -> str:
    return f"speech {speech.seconds:.1f}s of {speech.seconds_in:.1f}s, {segments} segments"


def _carries_audio(item: MediaItem) -> bool:
    """Audio items always; videos when they have an audio stream."""
    if item.kind == "audio":
        return True
    if item.kind != "video":
        return False
    with guarded("video container", item.location), av.open(io.BytesIO(item.data), mode="r") as container:
        return bool(container.streams.audio)

"""Voice detector and the numpy GE2E port: enrolled synthetic speaker found, other speech unknown,
noise and silence ignored; the port's known properties (mel filterbank, unit embeddings, stability)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from gateway.content import Inputs, MediaItem
from gateway.detect import media_voice
from gateway.detect.media_voice import SpeakerEncoder, mel_spectrogram, preprocess
from gateway.detect.voice import VoiceDetector
from gateway.errors import UninspectableError
from gateway.registry import VoiceBank

# media_samples is shared with tests/unit/registry (one index per test session)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
import media_samples as ms

RATE = ms.SAMPLE_RATE


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


@pytest.fixture(scope="module")
def detector(encoder: SpeakerEncoder) -> VoiceDetector:
    return VoiceDetector(ms.demo_index().voices, encoder=encoder)


def audio_inputs(samples: np.ndarray) -> Inputs:
    return ms.media_inputs(ms.wav_bytes(samples), "audio", "audio/wav")


# --- the detector ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [21, 22])
def test_enrolled_speaker_saying_something_new_is_matched(detector: VoiceDetector, seed: int) -> None:
    """Speaker A (enrolled from two other clips) says new 'sentences' → voice of talent voice-a."""
    [finding] = detector.detect(audio_inputs(ms.speech(seed, **ms.SPEAKER_A)), ms.CONTEXT)
    assert (finding.kind, finding.entity) == ("voice", "voice-a")
    assert finding.score >= 0.85
    assert finding.detail.endswith("match")


@pytest.mark.parametrize("seed", [31, 32])
def test_other_speaker_is_unknown_voice(detector: VoiceDetector, seed: int) -> None:
    """A different speaker → `voice_unknown` (speech that matches no talent), entity empty."""
    [finding] = detector.detect(audio_inputs(ms.speech(seed, **ms.SPEAKER_B)), ms.CONTEXT)
    assert (finding.kind, finding.entity) == ("voice_unknown", "")
    assert "closest cosine" in finding.detail


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        ("silence", np.zeros(4 * RATE, np.float32)),
        ("white noise", np.random.default_rng(0).normal(0, 0.1, 4 * RATE).astype(np.float32)),
        ("half a second of speech", ms.speech(41, seconds=0.5, **ms.SPEAKER_A)[: RATE // 2]),
        ("empty", np.zeros(0, np.float32)),
    ],
)
def test_no_speech_gives_nothing(detector: VoiceDetector, name: str, samples: np.ndarray) -> None:
    """Silence, noise (webrtcvad calls it speech; the pitch check does not) and too-short speech: nothing."""
    assert detector.detect(audio_inputs(samples), ms.CONTEXT) == []


@pytest.mark.parametrize(
    ("match", "review", "expected"),
    [
        (0.85, 0.75, ("voice", "match")),
        (0.9999, 0.5, ("voice", "review")),
        (0.9999, 0.9999, ("voice_unknown", "")),
    ],
)
def test_thresholds_are_settings(encoder: SpeakerEncoder, match: float, review: float,
                                 expected: tuple[str, str]) -> None:
    """match_similarity / review_similarity decide match, review or unknown."""
    detector = VoiceDetector(ms.demo_index().voices, encoder=encoder, match_similarity=match,
                             review_similarity=review)
    [finding] = detector.detect(audio_inputs(ms.speech(21, **ms.SPEAKER_A)), ms.CONTEXT)
    assert finding.kind == expected[0]
    assert finding.detail.endswith(expected[1])


def test_talent_speaking_inside_a_longer_recording_is_found(encoder: SpeakerEncoder) -> None:
    """Speaker B for 16 s, then speaker A for 8 s: segments are compared one by one, so A is found."""
    mixed = np.concatenate([ms.speech(51, seconds=16, **ms.SPEAKER_B), ms.speech(52, seconds=8, **ms.SPEAKER_A)])
    detector = VoiceDetector(ms.demo_index().voices, encoder=encoder)
    findings = detector.detect(audio_inputs(mixed), ms.CONTEXT)
    assert [(f.kind, f.entity) for f in findings] == [("voice", "voice-a")]


def test_empty_registry_still_flags_unknown_speech(encoder: SpeakerEncoder) -> None:
    """With no enrolled voices any speech is `voice_unknown` (the policy may hold voice cloning)."""
    detector = VoiceDetector(VoiceBank([], np.zeros((0, 256), np.float32)), encoder=encoder)
    [finding] = detector.detect(audio_inputs(ms.speech(21, **ms.SPEAKER_A)), ms.CONTEXT)
    assert finding.kind == "voice_unknown"


def test_video_audio_track_is_checked(detector: VoiceDetector) -> None:
    """A video whose soundtrack is the enrolled speaker → voice finding; a silent video → nothing."""
    frames = [ms.smooth_photo(1)] * 4
    with_voice = ms.video_bytes(frames, audio=ms.speech(21, **ms.SPEAKER_A))
    silent = ms.video_bytes(frames)
    assert [f.entity for f in detector.detect(ms.media_inputs(with_voice, "video", "video/mp4"), ms.CONTEXT)] == [
        "voice-a"
    ]
    assert detector.detect(ms.media_inputs(silent, "video", "video/mp4"), ms.CONTEXT) == []


def test_images_are_skipped(detector: VoiceDetector) -> None:
    assert detector.detect(ms.image_inputs(ms.poster()), ms.CONTEXT) == []


def test_undecodable_audio_is_a_gateway_error(detector: VoiceDetector) -> None:
    item = MediaItem(b"RIFF\x00\x00\x00\x00WAVEjunk", "audio", "audio/wav", "audio/wav", "form.file[0]")
    with pytest.raises(UninspectableError):
        detector.detect(Inputs(media=(item,)), ms.CONTEXT)


def test_encoder_failure_becomes_gateway_error(monkeypatch: pytest.MonkeyPatch, encoder: SpeakerEncoder) -> None:
    detector = VoiceDetector(ms.demo_index().voices, encoder=encoder)

    def explode(*args: object, **kwargs: object) -> None:
        raise FloatingPointError("overflow")

    monkeypatch.setattr(encoder, "embed_segments", explode)
    with pytest.raises(UninspectableError) as caught:
        detector.detect(audio_inputs(ms.speech(21, **ms.SPEAKER_A)), ms.CONTEXT)
    assert caught.value.location == "form.file[0]"


# --- the numpy port ----------------------------------------------------------------------------------


def test_same_clip_embeds_identically(encoder: SpeakerEncoder) -> None:
    """Deterministic: the same clip twice → cosine 1; embeddings are unit vectors of 256 values ≥ 0 (ReLU)."""
    speech = preprocess(ms.speech(61, **ms.SPEAKER_A)).samples
    first, second = encoder.embed(speech), encoder.embed(speech)
    assert first.shape == (256,)
    assert float(first @ second) == pytest.approx(1.0, abs=1e-6)
    assert float(np.linalg.norm(first)) == pytest.approx(1.0, abs=1e-5)
    assert (first >= 0).all()


@pytest.mark.parametrize(
    ("name", "make_other", "highest"),
    [
        ("same speaker, new text", lambda s: ms.speech(62, **ms.SPEAKER_A), 1.0),
        ("other speaker", lambda s: ms.speech(63, **ms.SPEAKER_B), 0.80),
        ("samples shuffled", lambda s: np.random.default_rng(1).permutation(s), 0.70),
        ("white noise", lambda s: np.random.default_rng(2).normal(0, 0.1, len(s)).astype(np.float32), 0.70),
    ],
)
def test_similarity_orders_as_expected(encoder: SpeakerEncoder, name: str, make_other: object, highest: float) -> None:
    """Cosine to a clip of speaker A: high for A again, below the match threshold for B, low for
    the same samples shuffled (spectrum kept, speech destroyed) or for noise."""
    reference = ms.speech(61, **ms.SPEAKER_A)
    other = make_other(reference)  # type: ignore[operator]
    similarity = float(encoder.embed(preprocess(reference).samples) @ encoder.embed(other))
    assert similarity <= highest
    if name.startswith("same"):
        assert similarity >= 0.85


def test_mel_filterbank_places_a_tone_in_the_right_band() -> None:
    """40 Slaney mel bands over 0–8 kHz, 10 ms hop, one frame per hop plus one. On the Slaney scale
    1 kHz is mel 15 and 8 kHz is mel 45.25; band i is centred on mel (i + 1) × 45.25 / 41, so a 1 kHz
    tone peaks in band 13 (centre 15.45 mel) or its neighbour 12 (14.35)."""
    tone = np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE).astype(np.float32)
    mel = mel_spectrogram(tone)
    assert mel.shape == (RATE // 160 + 1, 40)
    assert (mel >= 0).all()
    assert int(np.argmax(mel[50])) in (12, 13)


def test_packaged_weights_are_the_inference_tensors_only() -> None:
    """The vendored weights hold the LSTM and linear layers, float32, as Resemblyzer's model."""
    weights = media_voice._packaged_weights()
    assert sorted(weights) == sorted(
        [f"lstm.{kind}_l{layer}" for layer in range(3) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        + ["linear.weight", "linear.bias"]
    )
    assert weights["lstm.weight_ih_l0"].shape == (1024, 40)
    assert weights["linear.weight"].shape == (256, 256)
    assert all(w.dtype == np.float32 for w in weights.values())


def test_preprocess_trims_silence_and_reports_durations() -> None:
    """Two seconds of silence around a clip are trimmed; seconds_in keeps the original length."""
    clip = ms.speech(71, **ms.SPEAKER_A)
    padded = np.concatenate([np.zeros(2 * RATE, np.float32), clip, np.zeros(2 * RATE, np.float32)])
    speech = preprocess(padded)
    assert speech.seconds_in == pytest.approx(len(padded) / RATE)
    assert speech.seconds < len(clip) / RATE + 0.5
    assert speech.periodic > 0.5

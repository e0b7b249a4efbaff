"""Speaker embeddings without torch: Resemblyzer's GE2E encoder run in numpy.

    preprocess(pcm) -> Speech            volume normalised, long silences trimmed (webrtcvad)
    SpeakerEncoder().embed(samples)      256-d unit vector for one utterance
    SpeakerEncoder().embed_segments(...) one vector per stretch of speech (long or multi-speaker audio)

The maths follows `resemblyzer/audio.py` and `resemblyzer/voice_encoder.py` (Apache-2.0): 40-band
mel power spectrogram (25 ms window, 10 ms hop), a 3-layer LSTM (256) and a linear layer with ReLU,
partial utterances of 1.6 s at 1.3 per second averaged and normalised. The mel filterbank is
librosa's (Slaney scale and norm) re-implemented here, so librosa, numba and llvmlite are not needed.
The weights ship in `media_data/` (see its README for provenance and licence).

Input is mono float32 PCM at 16 kHz, as `gateway.content.decode_audio` produces.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import webrtcvad
from threadpoolctl import threadpool_limits

__all__ = ["SAMPLE_RATE", "SpeakerEncoder", "Speech", "mel_spectrogram", "preprocess"]

SAMPLE_RATE = 16_000
_N_FFT = 400
_HOP = 160
_N_MELS = 40
_PARTIAL_FRAMES = 160
_HIDDEN = 256
_LAYERS = 3
_VAD_WINDOW = 480  # 30 ms
_VAD_AVERAGE = 8
_VAD_MAX_SILENCE = 6
_TARGET_DBFS = -30.0
_INT16_MAX = 2**15 - 1
_WEIGHTS = "resemblyzer-ge2e.npz"


@dataclass(frozen=True, slots=True)
class Speech:
    """The voiced part of a recording, ready for the encoder."""

    samples: np.ndarray
    seconds_in: float
    """duration of the recording before silences were trimmed."""
    periodic: float = 0.0
    """fraction of 30 ms windows with a clear pitch (60–400 Hz): near 0 for noise, well above for speech."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def preprocess(pcm: np.ndarray) -> Speech:
    """Normalise the volume (increase only) and keep the voiced windows, as Resemblyzer does."""
    samples = np.asarray(pcm, dtype=np.float32).reshape(-1)
    seconds_in = len(samples) / SAMPLE_RATE
    if not len(samples) or not np.any(samples):
        return Speech(np.zeros(0, np.float32), seconds_in)
    voiced = _voiced(_normalise_volume(samples))
    return Speech(voiced, seconds_in, _periodic_fraction(voiced))


def _normalise_volume(samples: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean((samples.astype(np.float64) * _INT16_MAX) ** 2)))
    change = _TARGET_DBFS - 20 * np.log10(rms / _INT16_MAX)
    if change <= 0:
        return samples
    return (samples * (10 ** (change / 20))).astype(np.float32)


def _voiced(samples: np.ndarray) -> np.ndarray:
    samples = samples[: len(samples) - len(samples) % _VAD_WINDOW]
    if not len(samples):
        return samples
    pcm = np.clip(np.round(samples * _INT16_MAX), -_INT16_MAX - 1, _INT16_MAX).astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    step = _VAD_WINDOW * 2
    flags = np.array([vad.is_speech(pcm[i : i + step], SAMPLE_RATE) for i in range(0, len(pcm), step)], float)
    mask = np.round(_moving_average(flags, _VAD_AVERAGE)).astype(bool)
    mask = np.convolve(mask, np.ones(_VAD_MAX_SILENCE + 1), mode="same") > 0
    return samples[np.repeat(mask, _VAD_WINDOW)]


def _periodic_fraction(samples: np.ndarray, threshold: float = 0.45) -> float:
    """Share of 30 ms windows whose normalised autocorrelation peaks above `threshold` at a voice pitch."""
    count = len(samples) // _VAD_WINDOW
    if not count:
        return 0.0
    frames = samples[: count * _VAD_WINDOW].reshape(count, _VAD_WINDOW).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(frames, n=2 * _VAD_WINDOW, axis=1)) ** 2
    correlation = np.fft.irfft(power, axis=1)[:, : _VAD_WINDOW]
    energy = np.maximum(correlation[:, :1], 1e-12)
    peaks = (correlation[:, SAMPLE_RATE // 400 : SAMPLE_RATE // 60] / energy).max(axis=1)
    return float(np.mean(peaks > threshold))


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate((np.zeros((width - 1) // 2), values, np.zeros(width // 2)))
    total = np.cumsum(padded, dtype=float)
    total[width:] = total[width:] - total[:-width]
    return total[width - 1 :] / width


# --- mel spectrogram (librosa.feature.melspectrogram defaults: centred, zero-padded, Hann, power 2) --


def mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram of 16 kHz samples."""
    padded = np.pad(samples.astype(np.float32), _N_FFT // 2)
    count = 1 + (len(padded) - _N_FFT) // _HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, _N_FFT), strides=(padded.strides[0] * _HOP, padded.strides[0])
    )
    spectrum = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2
    return (spectrum @ _mel_filters().T).astype(np.float32)


@cache
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(np.float32)


@cache
def _mel_filters() -> np.ndarray:
    """Slaney-style triangular filters with Slaney area normalisation, (40, 201)."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + _N_FFT // 2)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), _N_MELS + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz < _MIN_LOG_HZ:
        return hz / _F_SP
    return float(_MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOG_STEP)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    linear = _F_SP * mels
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mels - _MIN_LOG_MEL))
    return np.where(mels >= _MIN_LOG_MEL, logarithmic, linear)


# --- encoder ---------------------------------------------------------------------------------------


class SpeakerEncoder:
    """GE2E speaker encoder in numpy. Immutable after construction: safe to share between threads."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        self._weights = weights if weights is not None else _packaged_weights()
        _single_threaded_blas()

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Unit 256-d embedding of one preprocessed utterance (at least one 1.6 s partial, zero-padded)."""
        return self.embed_many([samples])[0]

    def embed_many(self, utterances: list[np.ndarray]) -> list[np.ndarray]:
        """One embedding per utterance; all partials go through the LSTM as one batch."""
        batches = [_partials(samples) for samples in utterances]
        if not batches:
            return []
        embedded = self._forward(np.concatenate(batches))
        bounds = np.cumsum([0] + [len(batch) for batch in batches])
        return [_unit(embedded[a:b].mean(axis=0)) for a, b in itertools.pairwise(bounds)]

    def embed_segments(self, samples: np.ndarray, segment_seconds: float, max_segments: int) -> list[np.ndarray]:
        """Embeddings of consecutive stretches of speech; at most `max_segments`, spread over the whole."""
        size = max(int(segment_seconds * SAMPLE_RATE), _PARTIAL_FRAMES * _HOP)
        starts = list(range(0, max(len(samples) - size // 2, 1), size))
        if len(starts) > max_segments:
            picks = np.linspace(0, len(starts) - 1, max_segments).round().astype(int)
            starts = [starts[i] for i in picks]
        return self.embed_many([samples[start : start + size] for start in starts])

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        x = mels.astype(np.float32)
        hidden = np.zeros((x.shape[0], _HIDDEN), np.float32)
        for layer in range(_LAYERS):
            x, hidden = self._lstm_layer(x, layer)
        w = self._weights
        embedded = np.maximum(hidden @ w["linear.weight"].T + w["linear.bias"], 0)
        norms = np.linalg.norm(embedded, axis=1, keepdims=True)
        return embedded / np.maximum(norms, 1e-12)

    def _lstm_layer(self, x: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
        w = self._weights
        w_hh = w[f"lstm.weight_hh_l{layer}"].T
        inputs = x @ w[f"lstm.weight_ih_l{layer}"].T + (w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"])
        batch, steps, _ = x.shape
        h = np.zeros((batch, _HIDDEN), np.float32)
        c = np.zeros((batch, _HIDDEN), np.float32)
        out = np.empty((batch, steps, _HIDDEN), np.float32)
        for t in range(steps):
            gates = inputs[:, t] + h @ w_hh
            i = _sigmoid(gates[:, :_HIDDEN])
            f = _sigmoid(gates[:, _HIDDEN : 2 * _HIDDEN])
            g = np.tanh(gates[:, 2 * _HIDDEN : 3 * _HIDDEN])
            o = _sigmoid(gates[:, 3 * _HIDDEN :])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[:, t] = h
        return out, h


def _partials(samples: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
    """(partials, 160, 40) mel windows of one utterance, as Resemblyzer's `embed_utterance` cuts them."""
    slices, needed = _partial_slices(len(samples), rate, min_coverage)
    if needed > len(samples):
        samples = np.pad(samples, (0, needed - len(samples)))
    mel = mel_spectrogram(samples)
    return np.stack([mel[start:end] for start, end in slices])


def _partial_slices(n_samples: int, rate: float, min_coverage: float) -> tuple[list[tuple[int, int]], int]:
    """Mel-frame slices of the partial utterances, and the sample count they need (Resemblyzer's rule)."""
    n_frames = int(np.ceil((n_samples + 1) / _HOP))
    step = max(int(np.round((SAMPLE_RATE / rate) / _HOP)), 1)
    slices = [(i, i + _PARTIAL_FRAMES) for i in range(0, max(1, n_frames - _PARTIAL_FRAMES + step + 1), step)]
    coverage = (n_samples - slices[-1][0] * _HOP) / (_PARTIAL_FRAMES * _HOP)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices, slices[-1][1] * _HOP


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


@cache
def _single_threaded_blas() -> None:
    """Limit BLAS to one thread in this process (once).

    The LSTM makes ~500 small matrix products per clip; OpenBLAS threads spin on each, and on a busy
    2-core machine one 4 s clip took 6 s instead of 0.3 s (measured). Parallelism comes from the pool
    the detectors run in; every other BLAS use in the gateway is as small.
    """
    threadpool_limits(limits=1, user_api="blas")


@cache
def _packaged_weights() -> dict[str, np.ndarray]:
    source = resources.files("gateway.detect") / "media_data" / _WEIGHTS
    with source.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
        return {name: archive[name].astype(np.float32) for name in archive.files}

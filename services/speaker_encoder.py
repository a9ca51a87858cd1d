"""Speaker embeddings: who a voice sounds like, as a unit vector; asr diarizes with them, tts measures voice match.

The Protocol lets a GPU box plug in another encoder (pyannote, 3D-Speaker from a local model dir). The
embedded default is Resemblyzer's pretrained GE2E encoder (a 3-layer LSTM over 40 mel bands), whose
17 MB weights ship inside the ``resemblyzer`` wheel (installed ``--no-deps``: its package imports
webrtcvad and an old scipy path at import time, so only its weights file is read, by
``services.legacy_checkpoint``). The network runs in NumPy (mel bands as librosa computes them, the LSTM
as torch's ``nn.LSTM`` does): the embedded defaults need no torch.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from services.engine import Engine
from services.errors import NotConfigured
from services.legacy_checkpoint import load_state_dicts
from services.media import SAMPLE_RATE

WINDOW_SECONDS = 1.6  # one GE2E "partial utterance": 160 frames of 10 ms


class SpeakerEncoder(Engine, Protocol):
    model_name: str

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """One L2-normalised embedding per clip (mono 16 kHz float32), shape (len(clips), dim); blocking."""


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(1e-9, float(np.linalg.norm(a) * np.linalg.norm(b))))


def resemblyzer_weights() -> Path:
    """The pretrained.pt inside the installed resemblyzer wheel, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise NotConfigured("the speaker encoder needs the resemblyzer wheel: pip install --no-deps resemblyzer")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise NotConfigured(f"the resemblyzer wheel has no weights file at {path}")
    return path


class ResemblyzerEncoder(SpeakerEncoder):
    """GE2E: each clip is cut into 1.6 s partials (zero-padded when shorter), their embeddings averaged."""

    model_name = "resemblyzer-ge2e"

    def __init__(self, weights: Path | None = None) -> None:
        self.weights = weights
        self.model: Ge2e | None = None
        self.lock = threading.Lock()

    async def start(self) -> None:
        import asyncio

        await asyncio.to_thread(self.load)

    def load(self) -> None:
        with self.lock:
            if self.model is None:
                state = load_state_dicts(self.weights or resemblyzer_weights())["model_state"]
                self.model = Ge2e(state)

    def partials(self, clip: np.ndarray) -> list[np.ndarray]:
        """Resemblyzer's slicing: 160-frame windows, ~1.3 per second, covering the whole clip."""
        clip = normalize_volume(clip)
        frames, step = 160, 123  # 1.6 s windows every 1.23 s
        n_frames = clip.size // 160 + 1
        starts = list(range(0, max(1, n_frames - frames + step + 1), step))
        if len(starts) > 1 and (clip.size - starts[-1] * 160) / (frames * 160) < 0.75:
            starts.pop()
        padded = np.pad(clip, (0, max(0, (starts[-1] + frames) * 160 - clip.size)))
        mel = mel_frames(padded)
        return [mel[start : start + frames] for start in starts]

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        if self.model is None:
            self.load()
        assert self.model is not None
        if not clips:
            return np.zeros((0, 256), dtype=np.float32)
        from threadpoolctl import threadpool_limits

        partials = [self.partials(np.asarray(clip, dtype=np.float32)) for clip in clips]
        # one BLAS thread: the LSTM's many small products run 5-10x faster so on a busy CPU
        with threadpool_limits(1, user_api="blas"):
            embedded = self.model(np.stack([mel for clip in partials for mel in clip]))
        out, at = [], 0
        for clip in partials:
            mean = embedded[at : at + len(clip)].mean(axis=0)
            out.append(mean / max(1e-9, float(np.linalg.norm(mean))))
            at += len(clip)
        return np.stack(out)


class Ge2e:
    """GE2E's forward pass: a 3-layer LSTM (torch's gate order i, f, g, o), a linear layer on the last
    hidden state, ReLU, L2 normalisation."""

    def __init__(self, state: dict[str, np.ndarray], layers: int = 3) -> None:
        self.layers = [
            (
                state[f"lstm.weight_ih_l{k}"].T,
                state[f"lstm.weight_hh_l{k}"].T,
                state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"],
            )
            for k in range(layers)
        ]
        self.linear = (state["linear.weight"].T, state["linear.bias"])

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) power mel frames → (batch, 256) unit vectors."""
        sequence = mels.astype(np.float32)
        for w_input, w_hidden, bias in self.layers:
            sequence = lstm_layer(sequence, w_input, w_hidden, bias)
        raw = np.maximum(0.0, sequence[:, -1] @ self.linear[0] + self.linear[1])
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)


def lstm_layer(inputs: np.ndarray, w_input: np.ndarray, w_hidden: np.ndarray, bias: np.ndarray) -> np.ndarray:
    batch, steps, _ = inputs.shape
    size = w_hidden.shape[0]
    gates_in = inputs @ w_input + bias  # every step's input part at once
    hidden = np.zeros((batch, size), dtype=np.float32)
    cell = np.zeros((batch, size), dtype=np.float32)
    out = np.empty((batch, steps, size), dtype=np.float32)
    for t in range(steps):
        gates = gates_in[:, t] + hidden @ w_hidden
        i, f, o = (sigmoid(gates[:, k * size : (k + 1) * size]) for k in (0, 1, 3))
        cell = f * cell + i * np.tanh(gates[:, 2 * size : 3 * size])
        hidden = o * np.tanh(cell)
        out[:, t] = hidden
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def normalize_volume(clip: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """Raise quiet audio to ``target_dbfs`` (never lower it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2))) if clip.size else 0.0
    if rms <= 0:
        return clip
    gain_db = target_dbfs - 20 * np.log10(rms)
    return clip * (10 ** (gain_db / 20)) if gain_db > 0 else clip


def slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000) / (np.log(6.4) / 27), linear)


def slaney_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel >= 15, 1000 * np.exp((np.log(6.4) / 27) * (mel - 15)), mel * (200.0 / 3))


def mel_filters(n_fft: int = 400, n_mels: int = 40) -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft, n_mels) with Slaney area normalisation."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + n_fft // 2)
    mel_hz = slaney_hz(np.linspace(slaney_mel(np.array(0.0)), slaney_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


MEL_FILTERS = mel_filters()
HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)


def mel_frames(clip: np.ndarray) -> np.ndarray:
    """Power mel spectrogram, (frames, 40): 25 ms Hann windows every 10 ms, centred (librosa's defaults)."""
    padded = np.pad(clip.astype(np.float32), (200, 200))
    count = 1 + (padded.size - 400) // 160
    frames = np.lib.stride_tricks.as_strided(padded, (count, 400), (padded.strides[0] * 160, padded.strides[0]))
    power = np.abs(np.fft.rfft(frames * HANN, axis=1)) ** 2
    return (power @ MEL_FILTERS.T).astype(np.float32)

"""How high a voice is: its fundamental frequency, tracked every 10 ms with YIN (de Cheveigné & Kawahara
2002: the cumulative mean normalised difference function, its first trough below ``PERIODIC``, refined by
a parabola), in NumPy. Frames quieter than ``QUIET`` of the clip's loudest, or with no trough that deep
(breath, hiss, noise), are not voiced. Used by asr (pitch as a speaker cue beside the encoder) and tts
(the pitch of a voice prompt).
"""

from __future__ import annotations

from math import gcd

import numpy as np

RATE = 8000  # pitch is tracked on the audio resampled to this rate (fast, and enough for 400 Hz)
LOWEST_HZ, HIGHEST_HZ = 40.0, 400.0  # the pitches searched
LONGEST = int(np.ceil(RATE / LOWEST_HZ))  # periods searched, in samples
SHORTEST = int(RATE // HIGHEST_HZ)
SPAN = 2 * LONGEST  # samples compared with their shifted copy: two of the longest periods
HOP = RATE // 100  # 10 ms
PERIODIC = 0.4  # a frame is voiced when its normalised difference dips below this
QUIET = 0.1  # frames with less than this share of the clip's loudest energy are not voiced
BASE_HZ = 55.0  # semitones are counted from here


def track(clip: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """The voiced frames' pitch of ``clip`` (mono, any scale), in semitones above ``BASE_HZ``."""
    from scipy.signal import resample_poly

    length = SPAN + LONGEST + 1
    if clip.size < length * sample_rate // RATE:
        return np.zeros(0, dtype=np.float32)
    common = gcd(RATE, sample_rate)
    audio = resample_poly(clip.astype(np.float32), RATE // common, sample_rate // common).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio, length)[::HOP]
    size = 1 << int(np.ceil(np.log2(length + SPAN)))
    shifted = np.fft.irfft(np.fft.rfft(frames, size) * np.conj(np.fft.rfft(frames[:, :SPAN], size)), size)
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(LONGEST + 1)
    power = energy[:, lags + SPAN] - energy[:, lags]  # the energy of each shifted span
    difference = energy[:, SPAN : SPAN + 1] + power - 2 * shifted[:, : LONGEST + 1]
    normalised = np.ones_like(difference)
    running = np.cumsum(difference[:, 1:], axis=1)
    normalised[:, 1:] = difference[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    inner = normalised[:, SHORTEST:LONGEST]
    trough = (inner < PERIODIC) & (inner <= normalised[:, SHORTEST + 1 : LONGEST + 1])
    trough &= inner < normalised[:, SHORTEST - 1 : LONGEST - 1]
    loud = energy[:, SPAN] >= QUIET * energy[:, SPAN].max()
    voiced = trough.any(axis=1) & loud
    rows = np.flatnonzero(voiced)
    lag = SHORTEST + trough[rows].argmax(axis=1)
    before, at, after = (normalised[rows, lag + k] for k in (-1, 0, 1))
    bend = before - 2 * at + after
    shift = np.where(np.abs(bend) > 1e-12, 0.5 * (before - after) / np.where(bend == 0, 1, bend), 0.0)
    hertz = RATE / (lag + np.clip(shift, -1, 1))
    return (12 * np.log2(hertz / BASE_HZ)).astype(np.float32)


def to_hertz(semitones: float) -> float:
    return float(BASE_HZ * 2 ** (semitones / 12))

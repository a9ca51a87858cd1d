"""A second speaker cue beside the encoder: how high a voice is (its median fundamental frequency).

Each window's voiced frames are tracked by ``services.pitch.track`` (YIN, every 10 ms). A speaker's pitch
is the median, in semitones, over all voiced frames of their windows. Two speakers whose encoder centres
are alike but whose pitches are ``APART`` or more are two voices (``asr.speaker_clusters.prune``).
"""

from __future__ import annotations

import numpy as np

from services.pitch import track

MIN_VOICED = 20  # fewer voiced frames than this (0.2 s) say nothing about a speaker's pitch
APART = 4.0  # semitones: speakers whose median pitches are at least this far apart are two voices

__all__ = ["APART", "MIN_VOICED", "apart", "median_pitch", "track"]


def median_pitch(frames: list[np.ndarray]) -> float | None:
    """A speaker's pitch (semitones above 55 Hz) from their windows' voiced frames; None with too few."""
    voiced = np.concatenate(frames) if frames else np.zeros(0)
    return float(np.median(voiced)) if voiced.size >= MIN_VOICED else None


def apart(pitches: list[float | None]) -> np.ndarray:
    """Whether each pair of speakers is told apart by pitch (unknown pitches tell nothing)."""
    known = np.array([p is not None for p in pitches])
    values = np.array([p if p is not None else 0.0 for p in pitches])
    return (np.abs(values[:, None] - values[None, :]) >= APART) & known[:, None] & known[None, :]

"""Who spoke when, from the speech a VAD found: cut at short pauses, split where the voice changes, cluster.

1. Each stretch of speech is cut at its short pauses (``PAUSE_MS``, a second Silero pass): a change of
   speaker almost always has one, and the cut falls in the middle of the pause.
2. Each piece of speech between pauses is cut into windows of at most ``WINDOW_SECONDS`` (one encoder
   partial) and every window embedded. Windows join the segment before them while they sound like it
   (``SAME_SEGMENT``); a window that does not starts a new segment (a speaker who talks over another).
3. Segments of at least ``SHORT_SECONDS`` are clustered (average linkage on cosine distance, stopped
   before the first merge of two groups less alike than ``SAME_SPEAKER``, or at the count asked for),
   then refined by reassigning each to the nearest cluster centre; shorter segments ("yes", "对") join
   the nearest cluster, so they never add a speaker of their own. Without a count asked for,
   ``SAME_SPEAKER`` is strict: this finds at least the voices there are, usually more.
4. Every window gets the speaker on the likeliest path through its piece (Viterbi, ``SWITCH`` per
   change); with ``PASSES`` > 1 the turns that gives are clustered again.
5. Without a count asked for, speakers are then folded into the others one at a time: one with less
   than ``MIN_SPEAKER_SECONDS`` of speech, or the smaller of two whose centres (the mean of all their
   windows) are at least ``MERGE_SPEAKERS`` alike, unless their pitches differ clearly
   (``asr.speaker_pitch``: a second cue the encoder does not see well); the windows are relabelled (4.)
   after each fold. Whole-turn centres are steadier than the segments step 3 counts with, so the count
   is decided here.

The thresholds are tuned on the development sets only (``bench/diarize_sets.py --tune`` and ``--tune-pitch``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr import speaker_pitch
from asr.engines.base import SAMPLE_RATE, Span

PAUSE_MS = 150  # a pause at least this long may be a change of speaker
WINDOW_SECONDS = 1.6  # speech is embedded in windows of at most this long
SAME_SEGMENT = 0.7  # a window at least this similar (cosine) to the segment before it continues it
SAME_SPEAKER = 0.88  # two groups of segments at least this similar on average (cosine) are one voice
SHORT_SECONDS = 1.5  # shorter segments join the nearest speaker; they do not vote on the count
REFINE_ROUNDS = 3
SWITCH = 0.2  # what a change of speaker between two windows costs, against their similarity to each speaker
PASSES = 1  # more: the turns a pass finds are clustered again (no better on the development set)
MIN_SPEAKER_SECONDS = 2.0  # a speaker found with less speech than this (seconds) is folded into the others
MERGE_SPEAKERS = 0.8  # two speakers found whose centres are at least this similar are one


@dataclass
class Segment:
    start: int  # samples
    end: int
    embedding: np.ndarray
    windows: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


def cut_at_pauses(spans: list[Span], pauses: list[Span]) -> list[Span]:
    """``spans`` cut in the middle of every gap between the finer ``pauses`` spans that lies inside them."""
    out = []
    for span in spans:
        inner = [p for p in pauses if p.end > span.start and p.start < span.end]
        cuts = [(a.end + b.start) // 2 for a, b in zip(inner, inner[1:], strict=False) if b.start > a.end]
        bounds = [span.start, *[c for c in cuts if span.start < c < span.end], span.end]
        out += [Span(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return out


def windows(span: Span) -> list[Span]:
    """``span`` cut into equal windows of at most ``WINDOW_SECONDS``."""
    size = int(WINDOW_SECONDS * SAMPLE_RATE)
    count = max(1, -(-(span.end - span.start) // size))
    bounds = np.linspace(span.start, span.end, count + 1).astype(int)
    return [Span(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def segments(pieces: list[list[Span]], embeddings: np.ndarray) -> list[Segment]:
    """Consecutive windows of a piece of speech that sound alike, as segments with their mean embedding
    (``embeddings``: one per window of every piece, in order)."""
    out: list[Segment] = []
    first = 0
    for piece in pieces:
        vectors = embeddings[first : first + len(piece)]
        first += len(piece)
        start = 0
        for i in range(1, len(piece) + 1):
            if i == len(piece) or float(unit(vectors[start:i].sum(axis=0)) @ vectors[i]) < SAME_SEGMENT:
                out.append(segment_of(piece[start:i], vectors[start:i]))
                start = i
    return out


def segment_of(windows: list[Span], vectors: np.ndarray) -> Segment:
    weights = np.array([w.end - w.start for w in windows], dtype=np.float32)[:, None]
    return Segment(windows[0].start, windows[-1].end, unit((vectors * weights).sum(axis=0)), len(windows))


def cluster(embeddings: np.ndarray, seconds: list[float], count: int | None, low: int, high: int) -> list[int]:
    """A cluster number per segment: ``count`` clusters when given, otherwise as many as the voices
    ``SAME_SPEAKER`` tells apart, kept within ``low``..``high`` (and at most the number of segments)."""
    long = [i for i, s in enumerate(seconds) if s >= SHORT_SECONDS]
    if len(long) < max(count or low, 1):
        long = sorted(range(len(seconds)), key=lambda i: -seconds[i])[: max(len(long), count or low, 1)]
    vectors = embeddings[long]
    labels = agglomerate(vectors, count, low, high)
    labels = refine(vectors, labels, np.array([seconds[i] for i in long]))
    centres = centroids(vectors, labels)
    out = [int(np.argmax(centres @ e)) for e in embeddings]
    for i, label in zip(long, labels, strict=True):
        out[i] = int(label)
    return out


def agglomerate(vectors: np.ndarray, count: int | None, low: int, high: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vectors)
    if n == 1:
        return np.zeros(1, dtype=int)
    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    wanted = count or 1 + int((1 - tree[:, 2] < SAME_SPEAKER).sum())
    wanted = min(n, max(low, min(high, wanted)))
    return np.unique(fcluster(tree, wanted, criterion="maxclust"), return_inverse=True)[1]


def refine(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A few rounds of moving each segment to its nearest cluster centre (duration-weighted centres),
    keeping the number of clusters: average linkage can chain a segment onto the wrong voice."""
    k = int(labels.max()) + 1
    for _ in range(REFINE_ROUNDS):
        moved = np.argmax(vectors @ centroids(vectors, labels, weights).T, axis=1)
        if len(np.unique(moved)) < k or np.array_equal(moved, labels):
            break
        labels = moved
    return labels


def centroids(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    w = np.ones(len(vectors)) if weights is None else weights
    return np.stack([unit((vectors[labels == k] * w[labels == k, None]).sum(axis=0)) for k in range(labels.max() + 1)])


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(1e-9, float(np.linalg.norm(vector)))


def relabel(pieces: list[list[Span]], embeddings: np.ndarray, centres: np.ndarray) -> list[int]:
    """A speaker per window: the likeliest path through each piece of speech, scored by each window's
    similarity to the speakers' centres less ``SWITCH`` per change (Viterbi), so a change missed when
    segmenting is found and a turn does not flicker between speakers."""
    out: list[int] = []
    first = 0
    for piece in pieces:
        scores = embeddings[first : first + len(piece)] @ centres.T
        first += len(piece)
        total, back = scores[0].copy(), []
        for row in scores[1:]:
            stay = total[:, None] - SWITCH * (1 - np.eye(len(centres)))
            back.append(np.argmax(stay, axis=0))
            total = stay.max(axis=0) + row
        path = [int(np.argmax(total))]
        for pointers in reversed(back):
            path.append(int(pointers[path[-1]]))
        out += path[::-1]
    return out


def speaker_per_window(
    pieces: list[list[Span]],
    embeddings: np.ndarray,
    count: int | None,
    low: int,
    high: int,
    pitches: list[np.ndarray] | None = None,
) -> tuple[list[int], np.ndarray]:
    """A speaker number per window of ``pieces`` and the speakers' centres: segments clustered, every
    window relabelled along its piece; then the turns that gives are clustered again, ``PASSES`` in all.
    Every speaker the clustering finds keeps at least one window. ``pitches``: each window's voiced
    frames (``speaker_pitch.track``), which keep speakers of clearly different pitch from being folded."""
    found = segments(pieces, embeddings)
    per_window: list[int] = []
    for _ in range(PASSES):
        vectors = np.stack([s.embedding for s in found])
        labels = cluster(vectors, [s.seconds for s in found], count, low, high)
        centres = centroids(vectors, np.array(labels))
        relabelled = relabel(pieces, embeddings, centres)
        if len(set(relabelled)) < len(centres):
            relabelled = [label for s, label in zip(found, labels, strict=True) for _ in range(s.windows)]
        per_window = relabelled
        found = runs(pieces, embeddings, per_window)
    if count is None:
        per_window = prune(pieces, embeddings, per_window, low, pitches)
    return per_window, centroids(embeddings, np.array(per_window))


def prune(
    pieces: list[list[Span]],
    embeddings: np.ndarray,
    labels: list[int],
    low: int,
    pitches: list[np.ndarray] | None = None,
) -> list[int]:
    """Speakers folded into the others, one at a time while more than ``low`` are left: one with less than
    ``MIN_SPEAKER_SECONDS`` of speech, or one whose centre is ``MERGE_SPEAKERS`` alike another's and whose
    pitch (from ``pitches``, one array of voiced frames per window) is not clearly different; every
    window is then relabelled along its piece with the speakers left."""
    seconds = np.array([(w.end - w.start) / SAMPLE_RATE for piece in pieces for w in piece])
    while True:
        kept = sorted(set(labels))
        if len(kept) <= max(1, low):
            return labels
        index = np.array([kept.index(label) for label in labels])
        centres = centroids(embeddings, index)
        talk = np.bincount(index, weights=seconds, minlength=len(kept))
        alike = centres @ centres.T - 2 * np.eye(len(kept))
        if pitches is not None:
            voices = [
                speaker_pitch.median_pitch([p for p, k in zip(pitches, index, strict=True) if k == s])
                for s in range(len(kept))
            ]
            alike[speaker_pitch.apart(voices)] = -1.0
        if talk.min() < MIN_SPEAKER_SECONDS:
            drop = int(np.argmin(talk))
        elif alike.max() >= MERGE_SPEAKERS:
            pair = np.unravel_index(int(np.argmax(alike)), alike.shape)
            drop = int(min(pair, key=lambda k: talk[k]))
        else:
            return [int(k) for k in index]
        folded = relabel(pieces, embeddings, np.delete(centres, drop, axis=0))
        if len(set(folded)) < max(1, low):  # the path left a second speaker without a window
            return [int(k) for k in index]
        labels = folded


def runs(pieces: list[list[Span]], embeddings: np.ndarray, labels: list[int]) -> list[Segment]:
    """The stretches of each piece of speech that one speaker holds, as segments."""
    out: list[Segment] = []
    first = 0
    for piece in pieces:
        start = 0
        for i in range(1, len(piece) + 1):
            if i == len(piece) or labels[first + i] != labels[first + start]:
                out.append(segment_of(piece[start:i], embeddings[first + start : first + i]))
                start = i
        first += len(piece)
    return out

"""Who spoke when: speaker turns (``asr.speaker_clusters``) laid over the transcript.

Speech is cut at short pauses and where the voice changes; the segments' embeddings from the speaker
encoder (``services.speaker_encoder``) are clustered into speakers. The number of speakers is
``num_speakers`` when given, otherwise what the clustering tells apart, kept within
``min_speakers``..``max_speakers``. Known speakers (name + a short reference sample) name the clusters
nearest their references; the rest are A, B, … Each transcript segment then takes the speaker who talks
most within it; with word timestamps, a segment in which the speaker changes is split at the word where
it does.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from asr import speaker_clusters as clusters
from asr import speaker_pitch
from asr.engines.base import SAMPLE_RATE, Segment, Span
from asr.engines.silero_vad import SileroVad
from services.errors import BadRequest, NotConfigured
from services.speaker_encoder import SpeakerEncoder

if TYPE_CHECKING:
    from asr.pipeline import Transcriber

PAUSES = SileroVad(min_silence_ms=clusters.PAUSE_MS, pad_ms=30)  # the short pauses speech is cut at
KNOWN_SPEAKER = 0.6  # a cluster is named after a reference at least this similar to its centroid
MAX_SPEAKERS = 8


@dataclass(frozen=True)
class SpeakerOptions:
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int = MAX_SPEAKERS
    known: dict[str, np.ndarray] = field(default_factory=dict)  # name → reference audio (mono 16 kHz)

    @classmethod
    def parse(
        cls,
        num_speakers: int | None,
        min_speakers: int | None,
        max_speakers: int | None,
        known: dict[str, np.ndarray] | None = None,
    ) -> SpeakerOptions:
        low, high = min_speakers or 1, max_speakers or MAX_SPEAKERS
        for name, value in (("num_speakers", num_speakers), ("min_speakers", low), ("max_speakers", high)):
            if value is not None and not 1 <= value <= MAX_SPEAKERS:
                raise BadRequest(f"{name} must be between 1 and {MAX_SPEAKERS}")
        if low > high:
            raise BadRequest("min_speakers is larger than max_speakers")
        if num_speakers is not None and not low <= num_speakers <= high:
            raise BadRequest("num_speakers is outside min_speakers..max_speakers")
        return cls(num_speakers, low, high, known or {})


@dataclass
class SpeakerTurn:
    speaker: str
    start: float  # seconds
    end: float


def letters(count: int) -> list[str]:
    return [string.ascii_uppercase[i] if i < 26 else f"S{i + 1}" for i in range(count)]


def name_clusters(centroids: np.ndarray, references: dict[str, np.ndarray]) -> list[str]:
    """Known names for the clusters nearest their references (one cluster per name), letters for the rest."""
    names: list[str | None] = [None] * len(centroids)
    if references:
        known = list(references)
        score = centroids @ np.stack([references[name] for name in known]).T
        while True:
            cluster, ref = np.unravel_index(int(np.argmax(score)), score.shape)
            if score[cluster, ref] < KNOWN_SPEAKER:
                break
            names[int(cluster)] = known[int(ref)]
            score[cluster, :] = -np.inf
            score[:, ref] = -np.inf
    spare = iter(label for label in letters(len(centroids) + len(references)) if label not in references)
    return [name if name is not None else next(spare) for name in names]


class Diarizer:
    """Runs the encoder on the transcriber's model thread (one model call at a time), loading it on first use."""

    def __init__(self, encoder: SpeakerEncoder | None, transcriber: Transcriber) -> None:
        self.encoder = encoder
        self.transcriber = transcriber

    def require(self) -> SpeakerEncoder:
        if self.encoder is None:
            raise NotConfigured("diarization is off (ASR_SPEAKER_ENCODER=none)")
        return self.encoder

    @property
    def merge_pieces(self) -> bool:
        """Whisper pads every piece to 30 s, so it gets long pieces and splits them by word timestamps;
        engines without word timestamps transcribe each stretch of speech on its own."""
        return self.transcriber.engine_name == "whisper"

    async def turns(self, audio: np.ndarray, options: SpeakerOptions) -> list[SpeakerTurn]:
        encoder = self.require()
        spans = await self.transcriber.speech(audio)
        return await self.transcriber.on_model_thread(self.turns_blocking, encoder, audio, spans, options)

    async def attribute(
        self, audio: np.ndarray, segments: list[Segment], options: SpeakerOptions
    ) -> list[SpokenSegment]:
        return attribute(segments, await self.turns(audio, options))

    @staticmethod
    def turns_blocking(
        encoder: SpeakerEncoder, audio: np.ndarray, spans: list[Span], options: SpeakerOptions
    ) -> list[SpeakerTurn]:
        pieces = [clusters.windows(p) for p in clusters.cut_at_pauses(spans, PAUSES(audio))]
        cuts = [w for piece in pieces for w in piece]
        if not cuts:
            return []
        known = list(options.known)
        embedded = encoder.embed([audio[w.start : w.end] for w in cuts] + [options.known[n] for n in known])
        window_embeddings, reference_embeddings = embedded[: len(cuts)], embedded[len(cuts) :]
        if known:  # every reference heard in the audio is a speaker of its own
            heard = int(((window_embeddings @ reference_embeddings.T).max(axis=0) >= KNOWN_SPEAKER).sum())
            low = min(options.max_speakers, max(options.min_speakers, heard))
            options = replace(options, min_speakers=low)
        counted = options.num_speakers is None  # the count is decided here, with pitch as a second cue
        pitches = [speaker_pitch.track(audio[w.start : w.end]) for w in cuts] if counted else None
        per_window, centres = clusters.speaker_per_window(
            pieces, window_embeddings, options.num_speakers, options.min_speakers, options.max_speakers, pitches
        )
        order = list(dict.fromkeys(per_window))  # the first to speak is A
        names = dict(
            zip(order, name_clusters(centres[order], dict(zip(known, reference_embeddings, strict=True))), strict=True)
        )
        turns: list[SpeakerTurn] = []
        for window, label in zip(cuts, per_window, strict=True):
            start, end, who = window.start / SAMPLE_RATE, window.end / SAMPLE_RATE, names[label]
            if turns and turns[-1].speaker == who and start - turns[-1].end < 1e-3:
                turns[-1].end = end
            else:
                turns.append(SpeakerTurn(who, start, end))
        return turns


async def references(names: list[str], urls: list[str], transcriber: Transcriber) -> dict[str, np.ndarray]:
    """``known_speaker_names[]`` paired with ``known_speaker_references[]`` (data URLs of short samples)."""
    if len(names) != len(urls):
        raise BadRequest("known_speaker_names[] and known_speaker_references[] must have the same length")
    if len(names) > MAX_SPEAKERS or len(set(names)) != len(names) or not all(n.strip() for n in names):
        raise BadRequest(f"known_speaker_names[] must be up to {MAX_SPEAKERS} distinct, non-empty names")
    known = {}
    for name, url in zip(names, urls, strict=True):
        header, comma, payload = url.partition(",")
        if not (header.startswith("data:") and header.endswith(";base64") and comma):
            raise BadRequest("known_speaker_references[] must be data URLs: data:audio/wav;base64,...")
        try:
            data = base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise BadRequest("a known speaker reference is not valid base64") from exc
        audio = await transcriber.decode(data)
        if audio.size < SAMPLE_RATE // 2:
            raise BadRequest(f"the reference for {name!r} is shorter than half a second")
        known[name.strip()] = audio
    return known


def speaker_at(turns: list[SpeakerTurn], start: float, end: float) -> str | None:
    """The speaker who talks most between ``start`` and ``end`` (the nearest turn when none overlaps)."""
    if not turns:
        return None
    talk: dict[str, float] = {}
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > 0:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + overlap
    if talk:
        return max(talk, key=lambda name: talk[name])
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle))).speaker


@dataclass
class SpokenSegment:
    segment: Segment
    speaker: str | None


def attribute(segments: list[Segment], turns: list[SpeakerTurn]) -> list[SpokenSegment]:
    """A speaker for every segment; segments with word timestamps are split where the speaker changes."""
    out: list[SpokenSegment] = []
    for segment in segments:
        if not segment.words:
            out.append(SpokenSegment(segment, speaker_at(turns, segment.start, segment.end)))
            continue
        runs: list[tuple[str | None, list[Any]]] = []
        for word in segment.words:
            who = speaker_at(turns, word.start, word.end)
            if runs and runs[-1][0] == who:
                runs[-1][1].append(word)
            else:
                runs.append((who, [word]))
        if len(runs) == 1:
            out.append(SpokenSegment(segment, runs[0][0]))
            continue
        for who, words in runs:
            text = "".join(word.word for word in words).strip()
            piece = replace(segment, start=words[0].start, end=words[-1].end, text=text, words=words)
            out.append(SpokenSegment(piece, who))
    return out


def speakers_of(spoken: list[SpokenSegment]) -> list[str]:
    """The speakers in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in spoken if s.speaker is not None))


def seed_speakers(body: dict[str, Any], spoken: list[SpokenSegment] | None) -> dict[str, Any]:
    """The seed's ``diarize=true`` body: ``speakers`` and a ``speaker`` per segment."""
    if spoken is None:
        return body
    body["speakers"] = speakers_of(spoken)
    body["segments"] = [
        {
            "start": round(s.segment.start, 3),
            "end": round(s.segment.end, 3),
            "text": s.segment.text,
            "speaker": s.speaker,
        }
        for s in spoken
    ]
    return body


def check_chunking_strategy(value: str | None) -> None:
    """OpenAI's ``chunking_strategy``: ``auto`` or a ``server_vad`` object; lingxi always cuts at VAD pauses."""
    if value is None or value.strip() == "auto":
        return
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadRequest('chunking_strategy must be "auto" or a JSON object {"type": "server_vad", ...}') from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "server_vad":
        raise BadRequest('chunking_strategy must be "auto" or a JSON object {"type": "server_vad", ...}')

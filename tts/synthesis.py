"""The service layer between routes and engine: starts the engine in the background, admits requests
to a bounded queue (429 beyond it), runs at most ``engine.max_parallel`` generations at once, splits
long text into sentences and joins their audio with short pauses, whole or streamed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from services.engine import Lifecycle
from services.errors import BadRequest, LingxiError, TooManyRequests
from services.health import Health
from tts.audio import change_tempo, pcm_bytes, resample, silence, wav_header
from tts.config import Settings
from tts.engines.base import Audio, SynthesisRequest, TTSEngine

log = logging.getLogger("lingxi.tts")
EngineFactory = Callable[[Settings], TTSEngine]


class Synthesizer:
    def __init__(self, settings: Settings, factory: EngineFactory, on_sentence: Callable[[], None] = lambda: None):
        self.settings = settings
        self.on_sentence = on_sentence
        self.lifecycle = Lifecycle.build(f"the {settings.engine.value} engine", lambda: factory(settings))
        parallel = self.engine.max_parallel if self.engine else 1
        self.slots = threading.Semaphore(parallel)
        self.admitted = 0
        self.capacity = parallel + settings.queue_size
        self.lock = threading.Lock()

    # --- life cycle ------------------------------------------------------------------------------

    @property
    def engine(self) -> TTSEngine | None:
        return self.lifecycle.engine

    def start(self) -> threading.Thread:
        """Start the engine on a thread of its own (Flask has no event loop to run it on)."""
        thread = threading.Thread(
            target=asyncio.run, args=(self.lifecycle.start(),), name="tts-engine-start", daemon=True
        )
        thread.start()
        return thread

    def health(self) -> Health:
        ready = self.engine if self.lifecycle.ready else None
        return self.lifecycle.health({"engine": ready.name} if ready else None)

    def ready(self) -> TTSEngine:
        return self.lifecycle.require()

    def styles(self) -> list[str]:
        return self.ready().styles()

    def check_style(self, style: str) -> None:
        valid = self.styles()
        if style not in valid:
            raise BadRequest(f"unknown style {style!r}; valid styles: {', '.join(valid)}")

    # --- admission -------------------------------------------------------------------------------

    def admit(self) -> None:
        with self.lock:
            if self.admitted >= self.capacity:
                raise TooManyRequests(f"the tts engine is busy ({self.admitted} requests queued); retry shortly")
            self.admitted += 1

    def release(self) -> None:
        with self.lock:
            self.admitted -= 1

    # --- synthesis -------------------------------------------------------------------------------

    def pieces(self, request: SynthesisRequest, sentences: list[str]) -> Iterator[Audio]:
        """Audio of each sentence, in order, at the first sentence's sample rate."""
        engine = self.ready()
        rate: int | None = None
        for sentence in sentences:
            with self.slots:
                audio = engine.synthesize(replace(request, text=sentence))
            if not engine.handles_speed:
                audio = change_tempo(audio, request.speed)
            rate = rate or audio.sample_rate
            self.on_sentence()
            yield resample(audio, rate)

    def synthesize(self, request: SynthesisRequest, sentences: list[str]) -> Audio:
        """All sentences joined with pauses."""
        self.admit()
        try:
            parts: list[np.ndarray] = []
            rate = 0
            for audio in self.pieces(request, sentences):
                rate = audio.sample_rate
                if parts:
                    parts.append(silence(self.settings.sentence_pause_ms / 1000, rate))
                parts.append(audio.samples)
        finally:
            self.release()
        if not parts or not sum(part.size for part in parts):
            raise BadRequest("the text produced no audio")
        return Audio(np.concatenate(parts), rate)

    def stream_wav(self, request: SynthesisRequest, sentences: list[str]) -> WavStream:
        """A streamed WAV: the first sentence is synthesised before this returns (so its errors are
        still proper HTTP errors); the rest as the client reads."""
        self.admit()
        try:
            pieces = self.pieces(request, sentences)
            first = next(pieces)
        except StopIteration:
            self.release()
            raise BadRequest("the text produced no audio") from None
        except BaseException:
            self.release()
            raise
        return WavStream(first, pieces, self.settings.sentence_pause_ms / 1000, self.release)


class WavStream:
    """The WSGI body of a streamed WAV; ``close()`` (called by the server when the response ends
    or the client hangs up) stops synthesis and frees the admission slot, even if never iterated."""

    def __init__(self, first: Audio, pieces: Iterator[Audio], pause_s: float, release: Callable[[], None]):
        self.first, self.pieces, self.pause_s, self.release = first, pieces, pause_s, release
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield wav_header(self.first.sample_rate, None) + pcm_bytes(self.first)
        pause = silence(self.pause_s, self.first.sample_rate)
        try:
            for audio in self.pieces:
                yield pcm_bytes(Audio(np.concatenate([pause, audio.samples]), audio.sample_rate))
        except LingxiError as exc:  # headers are gone: end the stream early, say why in the log
            log.warning("tts stream ended early: %s", exc.message)
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pieces.close()  # type: ignore[attr-defined]
            self.release()

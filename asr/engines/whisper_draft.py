"""Whisper's quick pass for live drafts: a short encoder window, greedy decoding, no timestamps.

Whisper pads every piece to 30 s (3000 feature frames), and on a CPU the encoder's pass over those
frames is most of a transcription's cost. CTranslate2's encoder also takes fewer frames (whisper.cpp's
``audio_ctx``): a phrase of a few seconds encoded in a 7 s window costs about a quarter, and greedy
decoding without timestamps or temperature fallback keeps the decoder's share small. Whisper was
trained on 30 s windows, so with a short one it may run past the phrase's end and repeat it;
``max_length`` bounds that and ``cut_repetition`` trims what was repeated. The text is a draft:
the live route replaces it with the full beam-search pass (``WhisperEngine.transcribe``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.engines.base import SAMPLE_RATE, Segment, Transcript

HOP = 160  # samples per feature frame
FULL_FRAMES = 3000  # Whisper's 30 s window
MIN_FRAMES = 700  # 7 s: with less context Whisper base repeats itself more and misses more words
TAIL_FRAMES = 100  # at least 1 s of padding after the phrase
TOKENS_PER_SECOND = 10  # a generous bound on speech (English ~4 tokens/s, Mandarin ~6)
MIN_REPEAT = 4  # letters: a shorter echo ("the the", "媽媽") is speech, not a loop


def draft_frames(samples: int) -> int:
    return min(FULL_FRAMES, max(MIN_FRAMES, samples // HOP + TAIL_FRAMES))


def squashed(text: str) -> str:
    """Only the letters (any script), lower-cased: digits repeat in numbers ("1000") and are left out."""
    return "".join(char for char in text.lower() if char.isalpha())


def cut_repetition(text: str) -> str:
    """``text`` up to where it starts repeating itself: "Thank you. Thank you. Thank" → "Thank you."

    Compared on letters only (case and punctuation differ between the copies), the text is cut at the
    first point from which the rest, at least ``MIN_REPEAT`` letters of it, copies what came just before.
    """
    letters = squashed(text)
    size = len(letters)
    for start in range(MIN_REPEAT, size - MIN_REPEAT + 1):
        rest = letters[start:]
        for period in range(1, start + 1):
            if len(rest) >= min(period, 2 * MIN_REPEAT) and letters[start - period : size - period] == rest:
                return text_before(text, start)
    return text


def text_before(text: str, letters: int) -> str:
    """The prefix of ``text`` holding its first ``letters`` letters, without trailing commas."""
    seen = 0
    for index, char in enumerate(text):
        if squashed(char):
            if seen == letters:
                return text[:index].rstrip(" ,;、，")
            seen += 1
    return text


def whisper_draft(model: Any, audio: np.ndarray, language: str | None) -> Transcript:
    """One greedy pass of faster-whisper's ``model`` over ``audio`` in a short window (blocking)."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    audio = audio[: FULL_FRAMES * HOP]
    frames = draft_frames(audio.size)
    features = model.feature_extractor(audio, padding=frames * HOP)[:, :frames]
    encoded = model.encode(np.ascontiguousarray(features))
    multilingual = model.model.is_multilingual
    if language is None:
        language = model.model.detect_language(encoded)[0][0][0][2:-2] if multilingual else "en"
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=language)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    seconds = audio.size / SAMPLE_RATE
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=1,
        max_length=len(prompt) + int(seconds * TOKENS_PER_SECOND) + 8,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, (-1,)) or ()),
    )
    text = tokenizer.decode(result[0].sequences_ids[0]).replace("\ufffd", "")  # a character cut by max_length
    text = cut_repetition(text.strip())
    return Transcript(text, language, [Segment(0.0, seconds, text)] if text else [])

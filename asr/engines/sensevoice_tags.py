"""SenseVoice's rich transcription tags: ``<|zh|><|NEUTRAL|><|Speech|><|withitn|>text``.

funasr prefixes every recognised stretch with a language, an emotion, an audio event and a text
normalisation tag (and repeats the group when it joins VAD segments). ``parse_rich_text`` moves them
into fields and leaves plain text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

TAG = re.compile(r"<\|([^|<>]*)\|>")
LANGUAGES = {"zh", "en", "yue", "ja", "ko"}
EMOTIONS = {
    "HAPPY": "happy", "SAD": "sad", "ANGRY": "angry", "NEUTRAL": "neutral", "FEARFUL": "fearful",
    "DISGUSTED": "disgusted", "SURPRISED": "surprised", "EMO_UNKNOWN": "unknown",
}  # fmt: skip
EVENTS = {
    "Speech": "speech", "BGM": "bgm", "Applause": "applause", "Laughter": "laughter", "Cry": "cry",
    "Sneeze": "sneeze", "Breath": "breath", "Cough": "cough", "Event_UNK": "unknown",
}  # fmt: skip
UNSPACED = {"zh", "yue", "ja"}


@dataclass(frozen=True)
class RichText:
    text: str
    language: str | None
    emotion: str | None
    event: str | None


def most_common(values: list[str], fallbacks: tuple[str, ...] = ()) -> str | None:
    """The most frequent value; the ``fallbacks`` (e.g. neutral, unknown) only when nothing else occurs."""
    counts = Counter(v for v in values if v not in fallbacks)
    if counts:
        return counts.most_common(1)[0][0]
    return next((fallback for fallback in fallbacks if fallback in values), None)


def parse_rich_text(raw: str) -> RichText:
    languages: list[str] = []
    emotions: list[str] = []
    events: list[str] = []
    pieces: list[tuple[str | None, str]] = []
    language: str | None = None
    position = 0
    for match in TAG.finditer(raw):
        pieces.append((language, raw[position : match.start()]))
        position = match.end()
        tag = match.group(1)
        if tag in LANGUAGES:
            language = tag
            languages.append(tag)
        elif tag in EMOTIONS:
            emotions.append(EMOTIONS[tag])
        elif tag in EVENTS:
            events.append(EVENTS[tag])
    pieces.append((language, raw[position:]))
    texts = [(lang, " ".join(text.split())) for lang, text in pieces]
    text = ""
    for lang, piece in texts:
        if not piece:
            continue
        joiner = "" if not text or (lang in UNSPACED and text[-1] not in ".!?,;:") else " "
        text = f"{text}{joiner}{piece}"
    emotion = most_common(emotions, ("neutral", "unknown"))
    event = most_common(events, ("speech", "unknown"))
    return RichText(text, most_common(languages), emotion, event)

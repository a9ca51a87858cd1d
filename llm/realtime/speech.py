"""The siblings' part of a turn: asr transcribes the committed audio, tts speaks the answer clause by clause."""

from __future__ import annotations

import re
from typing import Any

from llm.realtime.audio import wav_bytes
from llm.siblings import Siblings

# a clause ends at a sentence or clause mark followed by a space (English), or at a CJK mark
CLAUSE_END = re.compile(r"(?:[.!?;:,](?=\s)|[。！？；：，、…]|\n)")
MIN_CLAUSE_CHARS = 12  # a shorter clause waits for the next (fewer, steadier tts calls); the first is sent at once
# the first chunk goes to tts at its clause's end or after this many words (Chinese: characters), whichever
# comes first: the voice starts while the llm writes on, and the next chunk is ready before this one is heard
FIRST_WORDS = re.compile(r"\s*(?:\S+\s+){4}")
FIRST_HAN = 6
HAN = re.compile(r"[\u3400-\u9fff]")


class ClauseCutter:
    """Text as the llm streams it, cut into clauses for tts as soon as each one ends."""

    def __init__(self) -> None:
        self.text = ""
        self.first = True

    def feed(self, delta: str) -> list[str]:
        self.text += delta
        clauses = []
        start = 0
        for match in CLAUSE_END.finditer(self.text):
            clause = self.text[start : match.end()]
            if clause.strip() and (self.first or len(clause.strip()) >= MIN_CLAUSE_CHARS):
                clauses.append(clause.strip())
                start = match.end()
                self.first = False
        if self.first:
            start = first_chunk_end(self.text)
            if start:
                clauses.append(self.text[:start].strip())
                self.first = False
        self.text = self.text[start:]
        return clauses

    def rest(self) -> str:
        rest, self.text = self.text.strip(), ""
        return rest


def first_chunk_end(text: str) -> int:
    """Where a first chunk without a clause mark yet may end: after ``FIRST_WORDS`` words or ``FIRST_HAN``
    Chinese characters (0: not yet)."""
    words = FIRST_WORDS.match(text)
    if words:
        return words.end()
    if len(HAN.findall(text)) >= FIRST_HAN and HAN.match(text[-1]):
        return len(text)
    return 0


async def transcribe(siblings: Siblings, pcm: bytes, settings: dict[str, Any]) -> tuple[str, str | None]:
    """The asr sibling's transcript of PCM16 24 kHz audio, and the language it heard."""
    data = {"model": settings.get("model") or "whisper-1", "response_format": "verbose_json"}
    if settings.get("language"):
        data["language"] = settings["language"]
    if settings.get("prompt"):
        data["prompt"] = settings["prompt"]
    files = {"file": ("speech.wav", wav_bytes(pcm), "audio/wav")}
    body = await siblings.call(siblings.asr, "POST", "/v1/audio/transcriptions", data=data, files=files)
    return str(body.get("text") or "").strip(), body.get("language")


async def speak(siblings: Siblings, text: str, voice: str) -> bytes:
    """The tts sibling's speech of ``text`` as PCM16 24 kHz."""
    body = {"model": "tts-1", "input": text, "voice": voice, "response_format": "pcm"}
    response = await siblings.fetch(siblings.tts, "POST", "/v1/audio/speech", json=body)
    return response.content

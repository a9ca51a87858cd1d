"""Split text into sentences (Chinese and Western punctuation) and pack them into overlapping chunks."""

from __future__ import annotations

import re

# A sentence ends at 。！？；… or at . ! ? ; followed by whitespace, or at a line break.
SENTENCE_END = re.compile(r"(?<=[。！？；…])|(?<=[.!?;])(?=\s)|\n+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def chunk_text(text: str, target_chars: int = 500, overlap_chars: int = 80) -> list[str]:
    """Greedy packing of whole sentences up to ``target_chars``; the next chunk starts with the last
    sentences of the previous one (up to ``overlap_chars``). A sentence longer than the target is cut."""
    sentences: list[str] = []
    for sentence in split_sentences(text):
        while len(sentence) > target_chars:
            sentences.append(sentence[:target_chars])
            sentence = sentence[target_chars - overlap_chars :]
        sentences.append(sentence)

    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in sentences:
        if current and size + len(sentence) > target_chars:
            chunks.append(join(current))
            overlap: list[str] = []
            kept = 0
            for previous in reversed(current):
                if kept + len(previous) > overlap_chars:
                    break
                overlap.insert(0, previous)
                kept += len(previous) + 1
            current, size = overlap, kept
        current.append(sentence)
        size += len(sentence) + 1
    if current:
        chunks.append(join(current))
    return chunks


def join(sentences: list[str]) -> str:
    """Join sentences with a space between Western ones and nothing between Chinese ones."""
    out = ""
    for sentence in sentences:
        if out and not (is_cjk(out[-1]) and is_cjk(sentence[0])):
            out += " "
        out += sentence
    return out


def is_cjk(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\uff00" <= char <= "\uffef"

"""Snippets cut around the words that matched, not always the chunk's start."""

from __future__ import annotations


def snippet(text: str, terms: list[str], width: int = 180) -> str:
    lowered = text.lower()
    positions = [lowered.find(term.lower()) for term in terms if term]
    positions = [p for p in positions if p >= 0]
    if not positions or min(positions) < width // 3:
        start = 0
    else:
        start = max(0, min(positions) - width // 3)
    end = min(len(text), start + width)
    piece = text[start:end].replace("\n", " ")
    return ("..." if start > 0 else "") + piece + ("..." if end < len(text) else "")

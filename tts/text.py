"""Text helpers: split long text into sentences (Chinese and Western punctuation), and into runs of
one script (Han characters vs. everything else) for engines that pick a voice per script."""

from __future__ import annotations

import re

# A sentence ends after 。！？!?；;… (and runs of them, plus closing quotes/brackets), or after . that is
# followed by whitespace or the end (so 3.14 and example.com stay whole), or at a line break.
SENTENCE_END = re.compile(
    r"""(?<=[。！？!?；;…])[”’"'）)\]」』]*\s*"""
    r"""|(?<=\.)[”’"'）)\]」』]*(?:\s+|$)"""
    r"""|\n+"""
)
CLAUSE_END = re.compile(r"(?<=[，,、：:])")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# characters that belong to whichever script run they sit in (digits, punctuation, spaces)
NEUTRAL = re.compile(r"[\s\d\W_]", re.UNICODE)


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Sentences of ``text``, none longer than ``max_chars`` (long ones cut at commas, then hard)."""
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence or not has_words(sentence):
            continue
        pieces.extend(cut_long(sentence, max_chars))
    return pieces


def cut_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    current = ""
    for clause in CLAUSE_END.split(sentence):
        while len(clause) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.append(clause[:max_chars])
            clause = clause[max_chars:]
        if len(current) + len(clause) > max_chars and current:
            out.append(current)
            current = ""
        current += clause
    if current:
        out.append(current)
    return [piece.strip() for piece in out if piece.strip() and has_words(piece)]


def has_words(text: str) -> bool:
    """True when the text has something to say (a letter, a digit or a Han character)."""
    return any(ch.isalnum() for ch in text)


def script_runs(text: str) -> list[tuple[bool, str]]:
    """``[(is_han, run), ...]``: consecutive runs of Han and non-Han text; neutral characters
    (digits, punctuation, spaces) stay in the run they are in."""
    runs: list[tuple[bool, str]] = []
    current_han: bool | None = None
    current = ""
    for ch in text:
        if NEUTRAL.fullmatch(ch) and not HAN.fullmatch(ch):
            current += ch
            continue
        is_han = bool(HAN.fullmatch(ch))
        if current_han is None:
            current_han = is_han
        elif is_han != current_han:
            runs.append((current_han, current))
            current, current_han = "", is_han
        current += ch
    if current:
        runs.append((bool(current_han), current))
    return [(is_han, run) for is_han, run in runs if has_words(run)]

"""The ``[n]`` of an answer from numbered sources, as OpenAI's ``url_citation`` annotations.

A small model often answers from a source, in its words, without writing its number. An answer that cites
no source is then attributed: when most of its words are a source's, ``[n]`` of that source is appended,
so the citation a reader sees is the model's own where it wrote one and the overlap's where it did not.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from llm import openai_format
from llm.engines.base import Chunk
from llm.web_answer import Source

CITATION = re.compile(r"\[(\d{1,2})\]")
WORD = re.compile(r"[a-z0-9]{3,}|[\u3400-\u9fff\uf900-\ufaff]{2,}")
ATTRIBUTED_SHARE = 0.5  # of the answer's terms found in one source, to cite it


def terms(text: str) -> set[str]:
    """Latin words of three letters or more, and the character pairs of Chinese runs."""
    found: set[str] = set()
    for word in WORD.findall(text.lower()):
        if word.isascii():
            found.add(word)
        else:
            found.update(word[i : i + 2] for i in range(len(word) - 1))
    return found


def attributed(content: str, sources: list[Source]) -> str:
    """`` [n]`` for the source most of an uncited answer's terms come from; empty when it cites, or none does."""
    if CITATION.search(content) or not sources:
        return ""
    said = terms(content)
    if not said:
        return ""
    share, best = max((len(said & terms(f"{s.title} {s.snippet}")) / len(said), s.number) for s in sources)
    return f" [{best}]" if share >= ATTRIBUTED_SHARE else ""


def url_citations(content: str, sources: list[Source]) -> list[dict[str, Any]]:
    """One ``url_citation`` per ``[n]`` in the answer that names a source; ``content[start:end]`` is the ``[n]``."""
    by_number = {source.number: source for source in sources}
    found = []
    for match in CITATION.finditer(content):
        source = by_number.get(int(match.group(1)))
        if source is not None:
            span = {"start_index": match.start(), "end_index": match.end()}
            found.append({"type": "url_citation", "url_citation": {"url": source.url, "title": source.title, **span}})
    return found


def annotate(completion: dict[str, Any], sources: list[Source]) -> dict[str, Any]:
    """The ``chat.completion`` with its answer's citations (attributed ones appended) as ``message.annotations``."""
    message = openai_format.first_choice(completion).get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        message["content"] += attributed(message["content"], sources)
        message["annotations"] = url_citations(message["content"], sources)
    return completion


async def annotated_stream(chunks: AsyncIterator[Chunk], sources: list[Source]) -> AsyncIterator[Chunk]:
    """The chunks as they come; at the end an attributed `` [n]`` (if any) in a chunk of its own, then the
    finishing chunk, whose ``delta.annotations`` hold the citations of the whole answer."""
    content = ""
    try:
        async for chunk in chunks:
            choice = openai_format.first_choice(chunk)
            delta = choice.get("delta")
            if not choice.get("finish_reason") or not isinstance(delta, dict):
                content += openai_format.delta_text(chunk)
                yield chunk
                continue
            if openai_format.delta_text(chunk):  # the last words come before the appended citation
                content += openai_format.delta_text(chunk)
                yield with_delta(chunk, {"content": delta.pop("content")}, None)
            appended = attributed(content, sources)
            if appended:
                content += appended
                yield with_delta(chunk, {"content": appended}, None)
            yield with_delta(chunk, {**delta, "annotations": url_citations(content, sources)}, choice["finish_reason"])
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def with_delta(chunk: Chunk, delta: dict[str, Any], finish_reason: str | None) -> Chunk:
    choice = {**openai_format.first_choice(chunk), "delta": delta, "finish_reason": finish_reason}
    copy = {**chunk, "choices": [choice]}
    if finish_reason is None:
        copy.pop("usage", None)
    return copy

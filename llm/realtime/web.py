"""Answers from the web in a realtime session (``web_search_options`` on the session or the response).

The user's last turn (its transcript, for speech) goes to the websearch service and its best results
into the prompt as numbered sources, as for ``/v1/chat/completions`` (``llm.web_answer``). A spoken
answer should not read ``[1]`` aloud: the markers are taken out of the answer as it streams, and the
titles of the sources it drew on (those it cited, or those its sentences are attributed to by
``llm.citations``) close it as a last sentence, spoken and in the transcript.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from llm import citations
from llm.engines.base import Chunk
from llm.openai_format import delta_text, first_choice
from llm.siblings import Siblings
from llm.web_answer import Found, is_chinese

MARKER = re.compile(r"\s*\[(\d{1,2})\]")
MAY_BE_MARKER = re.compile(r"\s*(?:\[\d{0,2})?$")  # the end of the text so far may begin a marker


async def sources_line(said: str, found: Found, siblings: Siblings | None = None) -> str:
    """The closing sentence naming the sources the answer drew on; empty when it drew on none."""
    by_number = {source.number: source for source in found.sources}
    numbers = [int(n) for n in MARKER.findall(await citations.Attribution(found, siblings).cited(said))]
    titles = list(dict.fromkeys(by_number[n].title for n in numbers if n in by_number))
    if not titles:
        return ""
    if is_chinese(said):
        return "\n来源：" + "；".join(titles) + "。"
    return "\nSources: " + "; ".join(titles) + "."


async def from_the_web(
    chunks: AsyncIterator[Chunk], found: Found, siblings: Siblings | None = None
) -> AsyncIterator[Chunk]:
    """The answer's chunks without its ``[n]`` markers, then one more naming the sources it drew on."""
    said, held, last = "", "", None
    try:
        async for chunk in chunks:
            text = delta_text(chunk)
            if not text:
                yield chunk
                continue
            held += text
            cut = MAY_BE_MARKER.search(held).start()  # type: ignore[union-attr]  # the pattern matches ""
            out, held = held[:cut], held[cut:]
            said += out
            last = chunk
            yield with_content(chunk, MARKER.sub("", out))
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    said += held
    closing = MARKER.sub("", held) + await sources_line(said, found, siblings)
    if last is not None and closing:
        yield with_content(last, closing)


def with_content(chunk: Chunk, content: str) -> Chunk:
    choice: dict[str, Any] = {**first_choice(chunk), "finish_reason": None}
    choice["delta"] = {**(choice.get("delta") or {}), "content": content}
    return {**chunk, "choices": [choice]}

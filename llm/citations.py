"""The ``[n]`` of an answer from numbered sources, as OpenAI's ``url_citation`` annotations.

A small model often answers from a source, in its words, without writing its number. Each sentence of the
answer that cites nothing is then attributed: when most of what it says beyond the question's own words is
in one source (Latin words, and the character pairs of Chinese), `` [n]`` of that source goes at the
sentence's end, before its full stop. A sentence that shares too few words with any source (one in the other
language, one in the model's own words) is attributed by its meaning (``llm.meanings``) when the embedding
service is at hand. A sentence that only says the question back, or that no source supports, gets no
citation. The citations a reader sees are the model's own where it wrote them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from llm import openai_format
from llm.engines.base import Chunk
from llm.meanings import Meanings
from llm.siblings import Siblings
from llm.web_answer import Found

CITATION = re.compile(r"\[(\d{1,2})\]")
WORD = re.compile(r"[a-z0-9]{3,}|[\u3400-\u9fff\uf900-\ufaff]{2,}")
COMMON = frozenset(
    "the and for are was were with that this these those which from have has had its not but you your can "
    "they them their also into more than when what how why who does did will would could should about there "
    "then been being other some such each most many much very one two used use uses".split()
)
SENTENCE_END = re.compile(r"[。！？；!?]+|\.(?=\s)|\n")
TRAILING_CITATIONS = re.compile(r"(?:[ \t]*\[\d{1,2}\])*\s*")  # on the sentence's line: a [n] on the next is a label
SPACES = re.compile(r"\s*")
TERMINAL = ".!?。！？；…:："
HELD = TERMINAL + "[]0123456789 \t\r\n"  # may yet end a sentence or be a citation: streamed once that is known
SUPPORTED_SHARE = 0.5  # of a sentence's terms beyond the question's, found in one source, to cite it
SUPPORTED_TERMS = 3  # and at least this many of them


def terms(text: str) -> set[str]:
    """Latin words of three letters or more (common ones left out), and the character pairs of Chinese runs."""
    found: set[str] = set()
    for word in WORD.findall(text.lower()):
        if word.isascii():
            if word not in COMMON:
                found.add(word)
        else:
            found.update(word[i : i + 2] for i in range(len(word) - 1))
    return found


def sentences(text: str) -> list[str]:
    """The text in sentences, each with its full stop, the citations right after it and the spaces that follow;
    joined, they are the text."""
    pieces, start = [], 0
    for end in SENTENCE_END.finditer(text):
        if end.start() < start:
            continue
        trailing = SPACES if end.group() == "\n" else TRAILING_CITATIONS
        stop = trailing.match(text, end.end()).end()  # type: ignore[union-attr]  # both match ""
        pieces.append(text[start:stop])
        start = stop
    if start < len(text):
        pieces.append(text[start:])
    return pieces


class Attribution:
    """Cites the sentences of an answer to ``question`` that their sources support (see the module's doc); with
    the llm's siblings, those that share too few words with any source are attributed by meaning too
    (``llm.meanings``)."""

    def __init__(self, found: Found, siblings: Siblings | None = None) -> None:
        self.asked = terms(found.question)
        self.sources = [(source.number, terms(f"{source.title} {source.snippet}")) for source in found.sources]
        self.meanings = Meanings(siblings, found)
        self.decided: dict[str, int | None] = {}  # each sentence's source, once known

    def new_terms(self, sentence: str) -> set[str]:
        """What the sentence says beyond the question, when that is enough to be attributed at all."""
        said = terms(CITATION.sub(" ", sentence)) - self.asked
        return said if len(said) >= SUPPORTED_TERMS else set()

    def source_of(self, sentence: str) -> int | None:
        """The number of the source whose words support the sentence, or None when none does."""
        said = self.new_terms(sentence)
        if not said or not self.sources:
            return None
        shared, number = max((len(said & known), -number) for number, known in self.sources)
        return -number if shared >= SUPPORTED_TERMS and shared / len(said) >= SUPPORTED_SHARE else None

    async def decide(self, pieces: list[str]) -> None:
        """Find the sources of the sentences not decided yet: by their words, then the rest by their meaning."""
        todo = [p for p in dict.fromkeys(pieces) if p not in self.decided and not CITATION.search(p)]
        for sentence in todo:
            self.decided[sentence] = self.source_of(sentence)
        unsupported = [p for p in todo if self.decided[p] is None and self.new_terms(p)]
        plain = [CITATION.sub(" ", sentence).strip() for sentence in unsupported]
        for sentence, number in zip(unsupported, await self.meanings.sources_of(plain), strict=True):
            self.decided[sentence] = number

    def cite(self, sentence: str) -> str:
        number = self.decided.get(sentence)
        if number is None:
            return sentence
        at = len(sentence.rstrip(TERMINAL + " \t\r\n"))
        return f"{sentence[:at]} [{number}]{sentence[at:]}"

    async def cited(self, content: str) -> str:
        """The whole answer with its supported sentences cited."""
        pieces = sentences(content)
        await self.decide(pieces)
        return "".join(self.cite(sentence) for sentence in pieces)

    async def settled(self, content: str) -> str:
        """What of an answer still being written can be shown already: the sentences that are over (the next one
        has begun, so no citation of theirs is still to come) cited, then the current one up to where it may end."""
        pieces = sentences(content)
        rest = pieces.pop() if pieces else ""
        if pieces and not re.search(r"[^\s\[\]\d]", rest):
            rest = pieces.pop() + rest
        await self.decide(pieces)
        return "".join(self.cite(sentence) for sentence in pieces) + rest[: len(rest.rstrip(HELD))]


def url_citations(content: str, found: Found) -> list[dict[str, Any]]:
    """One ``url_citation`` per ``[n]`` in the answer that names a source; ``content[start:end]`` is the ``[n]``."""
    by_number = {source.number: source for source in found.sources}
    cited = []
    for match in CITATION.finditer(content):
        source = by_number.get(int(match.group(1)))
        if source is not None:
            span = {"start_index": match.start(), "end_index": match.end()}
            cited.append({"type": "url_citation", "url_citation": {"url": source.url, "title": source.title, **span}})
    return cited


async def annotate(completion: dict[str, Any], found: Found, siblings: Siblings | None = None) -> dict[str, Any]:
    """The ``chat.completion`` with its supported sentences cited and the citations as ``message.annotations``."""
    message = openai_format.first_choice(completion).get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        message["content"] = await Attribution(found, siblings).cited(message["content"])
        message["annotations"] = url_citations(message["content"], found)
    return completion


async def annotated_stream(
    chunks: AsyncIterator[Chunk], found: Found, siblings: Siblings | None = None
) -> AsyncIterator[Chunk]:
    """The answer as it is written, each sentence's end held until its citation is known (one is inserted
    where the sentence is attributed); the finishing chunk's ``delta.annotations`` hold the whole answer's
    citations, indexed into the content the chunks carried."""
    attribution = Attribution(found, siblings)
    written = shown = ""
    last: Chunk | None = None
    try:
        async for chunk in chunks:
            last = chunk
            choice = openai_format.first_choice(chunk)
            delta = choice.get("delta")
            text = openai_format.delta_text(chunk)
            written += text
            if not choice.get("finish_reason") or not isinstance(delta, dict):
                if not text:
                    yield chunk
                    continue
                ready = await attribution.settled(written)
                if len(ready) > len(shown):
                    yield with_delta(chunk, {**(delta or {}), "content": ready[len(shown) :]}, None)
                    shown = ready
                continue
            ready = await attribution.cited(written)
            if len(ready) > len(shown):
                yield with_delta(chunk, {"content": ready[len(shown) :]}, None)
                shown = ready
            rest = {key: value for key, value in delta.items() if key != "content"}
            yield with_delta(chunk, {**rest, "annotations": url_citations(shown, found)}, choice["finish_reason"])
            last = None
        if last is not None:  # ended without a finishing chunk
            ready = await attribution.cited(written)
            if len(ready) > len(shown):
                yield with_delta(last, {"content": ready[len(shown) :]}, None)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def with_delta(chunk: Chunk, delta: dict[str, Any], finish_reason: str | None) -> Chunk:
    choice = {**openai_format.first_choice(chunk), "delta": delta, "finish_reason": finish_reason}
    copy = {**chunk, "choices": [choice]}
    if finish_reason is None:
        copy.pop("usage", None)
    return copy

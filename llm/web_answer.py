"""Answers with sources: the question → the websearch service's ``GET /search/web`` → the top results as
numbered sources in the prompt (``llm.citations`` then turns the answer's ``[n]`` into annotations).

Asked for by OpenAI's ``web_search_options`` on ``/v1/chat/completions`` and by ``web_search: true`` on
the seed's ``/api/chat``; the question is the last user message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llm import messages as chat_messages
from llm.siblings import Siblings
from services.errors import BadRequest

# OpenAI's search_context_size: sources in the prompt (with 2, the 0.5B model answered from the distractor)
SOURCES_BY_CONTEXT_SIZE = {"low": 3, "medium": 3, "high": 8}
SEARCHED = 5  # results asked of websearch at the least: it ranks them all, the best go in the prompt
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
QUESTION_WORD = re.compile(
    r"^(?:what|why|how|who|when|where|which|is|are|do|does|can|should)\b|什么|为什么|怎么|怎样|如何|哪|谁|吗|多少|几",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Prompt:
    """How to answer, then one worked example (a small model copies a shown answer's form far more reliably
    than it follows a described one), then the question's own results, in ``turn``'s form."""

    system: str
    turn: str  # the user's turn: {sources} then {question}
    topic: str  # the {question} when the query is not a question (keywords): a request to explain them
    example_sources: str
    example_question: str
    example_answer: str


PROMPTS = {
    "en": Prompt(
        system="You answer questions using web search results, citing the result you use with its number "
        "in square brackets, like [1].",
        turn="Web search results:\n{sources}\n\nQuestion: {question}\nAnswer in English in two or three "
        "sentences using only the search results (they may be in another language), and cite them like [1].",
        topic="Explain from the search results: {question}",
        example_sources="[1] Why the sea has two tides a day\nTides are caused mainly by the gravitational pull of "
        "the Moon on the oceans. The Earth rotates through two bulges of water each day.\n[2] Keeping a sourdough "
        "starter alive\nFeed the starter every day with equal weights of flour and water.",
        example_question="What causes the tides?",
        example_answer="Tides are caused mainly by the Moon's gravity pulling on the oceans [1]. As the Earth turns "
        "through two bulges of water each day, most coasts get two high tides [1].",
    ),
    "zh": Prompt(
        system="你根据网页搜索结果回答问题，并用方括号标出所用结果的编号，例如 [1]。",
        turn="网页搜索结果：\n{sources}\n\n问题：{question}\n请只根据搜索结果（可能是英文的）用中文三四句话回答，"
        "并像 [1] 这样标出所依据的搜索结果。",
        topic="请根据搜索结果介绍：{question}",
        example_sources="[1] 长城的修建\n现存的长城大多修建于明朝，用砖石砌成，东起山海关，西至嘉峪关。"
        "\n[2] 豆腐是怎样做成的\n黄豆浸泡后磨成豆浆，煮沸后加入卤水或石膏点浆，蛋白质凝固成豆花。",
        example_question="现在的长城是什么时候修的？",
        example_answer="现存的长城大多是明朝修建的，用砖石砌成 [1]。它东起山海关，西至嘉峪关 [1]。",
    ),
}


@dataclass(frozen=True)
class Source:
    number: int  # the n of its [n] in the prompt and the answer
    title: str
    url: str
    snippet: str

    def row(self) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "url": self.url, "snippet": self.snippet}


@dataclass(frozen=True)
class Found:
    """A web search's question and its numbered sources."""

    question: str
    sources: list[Source]


def source_count(options: Any) -> int:
    """How many sources OpenAI's ``web_search_options`` asks for; 400 for a malformed one."""
    if not isinstance(options, dict):
        raise BadRequest(f"web_search_options must be an object, not {type(options).__name__}")
    size = options.get("search_context_size", "medium")
    if size not in SOURCES_BY_CONTEXT_SIZE:
        raise BadRequest(f"web_search_options.search_context_size must be low, medium or high, not {size!r}")
    location = options.get("user_location")
    if location is not None and not (isinstance(location, dict) and isinstance(location.get("approximate"), dict)):
        raise BadRequest('web_search_options.user_location must be {"type": "approximate", "approximate": {...}}')
    return SOURCES_BY_CONTEXT_SIZE[size]


def question_of(conversation: list[dict[str, Any]]) -> str:
    for message in reversed(conversation):
        if message.get("role") == "user":
            question = chat_messages.text_of(message).strip()
            if question:
                return question
    raise BadRequest("a web search needs a user message with text: the last one is the query")


def is_chinese(text: str) -> bool:
    return CJK.search(text) is not None


async def search(siblings: Siblings, question: str, count: int) -> list[Source]:
    """The websearch service's ``count`` best results for the question (of at least ``SEARCHED``), numbered from 1."""
    params = {"q": question, "limit": max(count, SEARCHED)}
    if is_chinese(question):
        params["lang"] = "zh"
    body = await siblings.call(siblings.websearch, "GET", "/search/web", params=params)
    results = body.get("results") if isinstance(body, dict) else None
    rows = [row for row in results or [] if isinstance(row, dict) and isinstance(row.get("url"), str)]
    return [
        Source(n, str(row.get("title") or row["url"]), row["url"], str(row.get("snippet") or ""))
        for n, row in enumerate(rows[:count], start=1)
    ]


async def prepare(
    siblings: Siblings, conversation: list[dict[str, Any]], count: int
) -> tuple[list[dict[str, Any]], Found]:
    """Search the web for the last user message; the conversation to send the model, and what was found."""
    question = question_of(conversation)
    sources = await search(siblings, question, count)
    return with_sources(conversation, question, sources), Found(question, sources)


def asked(question: str, prompt: Prompt) -> str:
    """The question as the model is asked it: keywords (no question mark, no question word) become a request to
    explain them, which a small model answers rather than says back."""
    if question.rstrip().endswith(("?", "？")) or QUESTION_WORD.search(question):
        return question
    return prompt.topic.format(question=question)


def with_sources(conversation: list[dict[str, Any]], question: str, sources: list[Source]) -> list[dict[str, Any]]:
    """The conversation with how to cite, a worked example, and its last user message replaced by the
    numbered sources followed by the question."""
    prompt = PROMPTS["zh" if is_chinese(question) else "en"]
    listed = "\n".join(f"[{s.number}] {s.title}\n{s.snippet}" for s in sources) or "(no results)"
    last = max(i for i, message in enumerate(conversation) if message.get("role") == "user")
    return [
        {"role": "system", "content": prompt.system},
        *conversation[:last],
        {
            "role": "user",
            "content": prompt.turn.format(sources=prompt.example_sources, question=prompt.example_question),
        },
        {"role": "assistant", "content": prompt.example_answer},
        {"role": "user", "content": prompt.turn.format(sources=listed, question=asked(question, prompt))},
        *conversation[last + 1 :],
    ]

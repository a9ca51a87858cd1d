"""Citing an answer's sentences to the numbered sources that support them, in a whole answer and in one
streamed in pieces; the annotations always point at the ``[n]`` in the content the client received."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import openai

from llm import openai_format
from llm.citations import annotate, annotated_stream
from llm.web_answer import Found, Source, with_sources

SOURCES = [
    Source(
        1,
        "Why the sea has two tides a day",
        "https://a.example/tides",
        "Tides are caused mainly by the "
        "gravitational pull of the Moon on the oceans. The Earth rotates through two bulges of water each day.",
    ),
    Source(
        2,
        "Raft: leader election",
        "https://b.example/raft",
        "A follower that hears nothing from a leader "
        "before its election timeout becomes a candidate and asks the other servers for votes with RequestVote.",
    ),
    Source(
        3,
        "熟普洱的渥堆发酵",
        "https://c.example/puer",
        "熟普洱采用渥堆工艺：把毛茶堆成大堆，洒水后盖上湿布，"
        "霉菌和酵母等微生物大量繁殖，茶堆温度升高，几周内模仿多年陈化的效果。",
    ),
]
RAFT = Found("How does Raft choose a leader?", SOURCES)
TEA = Found("熟普洱是怎么做的？", SOURCES)


def completion(content: str) -> dict[str, Any]:
    return openai_format.completion("m", content, "stop", 10, 5)


def answered(content: str, found: Found) -> tuple[str, list[str]]:
    """The content the client gets and the URL of each annotation, checked to sit on a ``[n]``."""
    message = asyncio.run(annotate(completion(content), found))["choices"][0]["message"]
    return message["content"], spans(message["content"], message["annotations"])


def spans(content: str, annotations: list[dict[str, Any]]) -> list[str]:
    urls = []
    for annotation in annotations:
        cited = annotation["url_citation"]
        number = int(re.fullmatch(r"\[(\d+)\]", content[cited["start_index"] : cited["end_index"]]).group(1))
        assert cited["url"] == SOURCES[number - 1].url
        urls.append(cited["url"])
    return urls


def test_an_english_sentence_taken_from_a_source_is_cited_before_its_full_stop():
    content, urls = answered(
        "Raft is a consensus algorithm. A follower becomes a candidate when its election timeout passes without "
        "hearing from a leader, and asks the other servers for votes.",
        RAFT,
    )
    assert content.endswith("asks the other servers for votes [2].")
    assert content.startswith("Raft is a consensus algorithm. A follower")  # the unsupported sentence is left
    assert urls == [SOURCES[1].url]


def test_a_chinese_sentence_taken_from_a_source_is_cited_before_its_full_stop():
    content, urls = answered("熟普洱是把毛茶堆成大堆，洒水后盖上湿布，让微生物繁殖。我觉得它很好喝。", TEA)
    assert content == "熟普洱是把毛茶堆成大堆，洒水后盖上湿布，让微生物繁殖 [3]。我觉得它很好喝。"
    assert urls == [SOURCES[2].url]


def test_each_sentence_is_cited_to_its_own_source():
    content, urls = answered(
        "The Moon's gravitational pull on the oceans causes the tides. A follower asks the other servers for "
        "votes with RequestVote after its election timeout.",
        RAFT,
    )
    assert "causes the tides [1]. A follower" in content and content.endswith("election timeout [2].")
    assert urls == [SOURCES[0].url, SOURCES[1].url]


def test_a_sources_number_opening_the_next_line_is_not_the_citation_of_the_line_before():
    content, urls = answered(
        "Tides are caused mainly by the gravitational pull of the Moon on the oceans\n[2] Raft: leader election", RAFT
    )
    assert (
        content
        == "Tides are caused mainly by the gravitational pull of the Moon on the oceans [1]\n[2] Raft: leader election"
    )
    assert urls == [SOURCES[0].url, SOURCES[1].url]


def test_the_models_own_citation_is_kept_and_not_doubled():
    content, urls = answered("A follower asks the other servers for votes with RequestVote [1].", RAFT)
    assert content == "A follower asks the other servers for votes with RequestVote [1]."
    assert urls == [SOURCES[0].url]


def test_an_answer_no_source_supports_gets_no_citation():
    for found, content in [
        (RAFT, "Raft is a popular library written by a team in Norway. It is fast and free to download."),
        (TEA, "普洱茶产自云南，适合冬天饮用。很多人喜欢在饭后喝一杯。"),
    ]:
        assert answered(content, found) == (content, [])


def test_the_question_said_back_gets_no_citation():
    for found, content in [(RAFT, "How does Raft choose a leader?"), (TEA, "熟普洱是怎么做的。")]:
        assert answered(content, found) == (content, [])


def chunks(pieces: list[str]) -> AsyncIterator[dict[str, Any]]:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        yield {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        for piece in pieces:
            yield {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}
        yield {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

    return stream()


def streamed(content: str, found: Found, size: int) -> tuple[str, list[dict[str, Any]]]:
    async def collect() -> list[dict[str, Any]]:
        pieces = [content[i : i + size] for i in range(0, len(content), size)]
        return [chunk async for chunk in annotated_stream(chunks(pieces), found)]

    got = asyncio.run(collect())
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in got)
    [last] = [chunk for chunk in got if chunk["choices"][0].get("finish_reason")]
    assert last is got[-1]
    return text, last["choices"][0]["delta"]["annotations"]


def test_a_streamed_answer_is_cited_as_the_whole_answer_is_in_any_pieces():
    answers = [
        (
            RAFT,
            "Raft is a consensus algorithm. A follower becomes a candidate when its election timeout passes "
            "without hearing from a leader, and asks the other servers for votes.\nThe Moon pulls the oceans [1]. "
            "Version 3.5 is out.\n[2] Raft: leader election [2]\nTides are caused mainly by the Moon's pull.",
        ),
        (TEA, "熟普洱是把毛茶堆成大堆，洒水后盖上湿布，让微生物繁殖。我觉得它很好喝 [1]。"),
        (RAFT, "Raft is a consensus algorithm."),
    ]
    for found, content in answers:
        whole, urls = answered(content, found)
        for size in (1, 2, 3, 7, 1000):
            text, annotations = streamed(content, found, size)
            assert text == whole, size
            assert spans(text, annotations) == urls


def test_each_cited_number_is_an_annotation_slicing_its_marker():
    content = "Tides come from the Moon [1]. 熟茶渥堆发酵 [3]. Unknown [7]."
    message = asyncio.run(annotate(completion(content), RAFT))["choices"][0]["message"]
    parsed = openai.types.chat.ChatCompletionMessage.model_validate(message)
    assert parsed.content == content  # cited answers are left as written
    assert [
        (a.url_citation.url, content[a.url_citation.start_index : a.url_citation.end_index]) for a in parsed.annotations
    ] == [(SOURCES[0].url, "[1]"), (SOURCES[2].url, "[3]")]


def test_a_stream_ends_with_the_cited_last_sentence_then_the_annotations_and_usage():
    async def pieces():
        for text, finish in [("熟普洱经过", None), ("渥堆发酵，微生物大量繁殖。", "stop")]:
            yield openai_format.chunk("id", "m", 0, {"content": text}, finish, {"prompt_tokens": 1} if finish else None)

    async def collect():
        return [chunk async for chunk in annotated_stream(pieces(), TEA)]

    out = asyncio.run(collect())
    deltas = [chunk["choices"][0]["delta"] for chunk in out]
    content = "".join(delta.get("content", "") for delta in deltas)
    assert content == "熟普洱经过渥堆发酵，微生物大量繁殖 [3]。"
    assert [chunk["choices"][0]["finish_reason"] for chunk in out] == [None, None, "stop"]
    assert "usage" in out[-1] and all("usage" not in chunk for chunk in out[:-1])
    [annotation] = deltas[-1]["annotations"]
    span = annotation["url_citation"]
    assert content[span["start_index"] : span["end_index"]] == "[3]" and span["url"] == SOURCES[2].url


def test_the_question_goes_last_after_its_sources_in_its_language():
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "熟茶怎么发酵？"}]
    prompt = with_sources(conversation, "熟茶怎么发酵？", SOURCES)
    last = prompt[-1]["content"]
    assert prompt[-1]["role"] == "user" and last.index("熟普洱的渥堆发酵") < last.index("熟茶怎么发酵？")
    assert "中文" in last and {"role": "system", "content": "be brief"} in prompt


def test_keywords_are_asked_as_a_request_to_explain_them_and_questions_as_written():
    for query, asked in [
        ("京剧 脸谱 行当", "问题：请根据搜索结果介绍：京剧 脸谱 行当\n"),
        (
            "Raft RequestVote election timeout",
            "Question: Explain from the search results: Raft RequestVote election timeout\n",
        ),
        ("熟茶怎么发酵", "问题：熟茶怎么发酵\n"),
        ("how do bees find flowers", "Question: how do bees find flowers\n"),
    ]:
        assert asked in with_sources([{"role": "user", "content": query}], query, SOURCES)[-1]["content"]

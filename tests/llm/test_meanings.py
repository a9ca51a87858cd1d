"""Citing sentences to their sources by meaning (the real embedding service, on its multilingual default):
a sentence in other words or in the other language than its source is cited to it; one that says the question
back or that no source supports is not; without the embedding service, the shared-words rule alone."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from llm import meanings
from llm.citations import annotate, annotated_stream
from llm.config import Settings
from llm.siblings import Siblings
from llm.web_answer import Found
from tests.conftest import free_port
from tests.llm.test_citations import SOURCES, chunks, completion, spans

RAFT = Found("How does Raft choose a leader?", SOURCES)
TEA = Found("熟普洱是怎么做的？", SOURCES)
TEA_EN = Found("How is ripe pu-erh made?", SOURCES)
TIDES_ZH = Found("潮汐是怎么形成的？", SOURCES)


def siblings_at(embedding_url: str) -> Siblings:
    return Siblings(Settings(embedding_url=embedding_url, asr_url="", tts_url="", websearch_url=""))


@pytest_asyncio.fixture(loop_scope="session")  # the loop the tests run on: the client's pool is bound to it
async def siblings(embedding_service: str) -> AsyncIterator[Siblings]:
    hub = siblings_at(embedding_service)
    yield hub
    await hub.aclose()


async def answered(content: str, found: Found, hub: Siblings | None) -> tuple[str, list[str]]:
    message = (await annotate(completion(content), found, hub))["choices"][0]["message"]
    return message["content"], spans(message["content"], message["annotations"])


async def streamed(content: str, found: Found, hub: Siblings, size: int) -> tuple[str, list[str]]:
    pieces = [content[i : i + size] for i in range(0, len(content), size)]
    got: list[dict[str, Any]] = [chunk async for chunk in annotated_stream(chunks(pieces), found, hub)]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in got)
    return text, spans(text, got[-1]["choices"][0]["delta"]["annotations"])


async def test_a_sentence_in_other_words_than_its_source_is_cited_to_it(siblings):
    for found, content, cited in [
        (
            RAFT,
            "When a node stops receiving heartbeats, it stands for election and requests ballots from its peers.",
            "requests ballots from its peers [2].",
        ),
        (TEA, "茶叶被堆起来洒水盖布，让细菌和真菌发酵。", "让细菌和真菌发酵 [3]。"),
    ]:
        assert await answered(content, found, None) == (content, [])  # no words shared: the words' rule cites nothing
        text, urls = await answered(content, found, siblings)
        assert text.endswith(cited) and urls == [SOURCES[int(cited[-3]) - 1].url], text


async def test_a_sentence_in_the_other_language_than_its_source_is_cited_to_it(siblings):
    for found, content, cited in [
        (
            TEA_EN,
            "Ripe pu-erh is piled in large heaps, sprinkled with water and covered with wet cloth so that microbes "
            "ferment it.",
            "so that microbes ferment it [3].",
        ),
        (TIDES_ZH, "潮汐主要是月球引力拉动海洋造成的，地球每天转过两个水隆起。", "地球每天转过两个水隆起 [1]。"),
    ]:
        text, urls = await answered(content, found, siblings)
        assert text.endswith(cited) and urls == [SOURCES[int(cited[-3]) - 1].url], text


async def test_the_question_said_back_and_unsupported_sentences_stay_uncited(siblings):
    for found, content in [
        (RAFT, "Many people wonder how Raft servers choose their leader."),  # closer to the question than to [2]
        (TEA_EN, "Many people ask how ripe pu-erh tea is actually made today."),
        (TIDES_ZH, "很多人都想知道潮汐究竟是怎么形成的。"),
        (RAFT, "How does Raft choose a leader?"),  # no new words
        (RAFT, "Raft is a popular library written by a team in Norway. It is fast and free to download."),
        (TEA, "普洱茶产自云南，适合冬天饮用。很多人喜欢在饭后喝一杯。"),
    ]:
        assert await answered(content, found, siblings) == (content, [])


async def test_a_streamed_answer_is_cited_by_meaning_as_the_whole_answer_is(siblings):
    content = (
        "Raft elects leaders. When a node stops receiving heartbeats, it stands for election and requests ballots "
        "from its peers.\n潮汐主要是月球引力拉动海洋造成的。Raft is a popular library written in Norway."
    )
    whole = await answered(content, RAFT, siblings)
    assert whole[1] == [SOURCES[1].url, SOURCES[0].url], whole[0]
    for size in (1, 2, 3, 7):
        assert await streamed(content, RAFT, siblings, size) == whole, size


async def test_without_the_embedding_service_only_shared_words_cite_and_that_is_logged_once(caplog):
    meanings.warned.clear()
    cross = "Ripe pu-erh is piled in large heaps, sprinkled with water and covered with wet cloth so that microbes."
    shared = "熟普洱是把毛茶堆成大堆，洒水后盖上湿布，让微生物繁殖。"
    shared_cited = "熟普洱是把毛茶堆成大堆，洒水后盖上湿布，让微生物繁殖 [3]。"
    for hub in (siblings_at(f"http://127.0.0.1:{free_port()}"), siblings_at("")):  # down, then not configured
        with caplog.at_level(logging.WARNING, logger="lingxi.llm"):
            for _ in range(2):
                assert await answered(cross, TEA_EN, hub) == (cross, [])
                assert await answered(shared, TEA, hub) == (shared_cited, [SOURCES[2].url])
        await hub.aclose()
    warnings = [record.getMessage() for record in caplog.records if record.name == "lingxi.llm"]
    assert len(warnings) == 2, warnings
    assert "gave no vectors" in warnings[0] and "LLM_EMBEDDING_URL" in warnings[1]

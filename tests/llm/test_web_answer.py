"""Answers with sources through the llm's one base URL: OpenAI's ``web_search_options`` (through the ``openai``
SDK, plain and streamed) and the seed's ``web_search: true``. Real parts: the embedded default Qwen, the
websearch service on a real PostgreSQL, embedded Qdrant and the real embedding service, loopback pages in
Chinese and English, and a local server speaking SearXNG's JSON API."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest

from llm.app import create_app
from llm.config import Settings
from llm.siblings import Siblings
from tests.conftest import LocalServer, free_port, serve_app, serve_routes, world_readable_tmpdir
from tests.llm.conftest import LOAD_TIMEOUT_S, NO_SIBLINGS, QWEN, Running, serve, wait_healthy
from tests.llm.realtime_client import audio_of, send_audio, silence, spoken_pcm, until, until_all
from tests.llm.realtime_client import client as realtime_client
from tests.llm.test_qwen import cjk_share
from tests.websearch.searxng import FakeSearxng, fresh_database
from tests.websearch.web_pages import PAGES
from websearch.app import create_app as create_websearch
from websearch.config import Settings as WebsearchSettings

MARKER = re.compile(r"\[\d+\]")
BEES = "how do bees tell each other where the flowers are?"
RAFT = "What is Raft?"
HEARD_AS = [f"{what} {raft}{end}" for what in ("What is", "What's") for raft in ("Raft", "raft") for end in "?. "]
RAFT_HEARD = [heard.strip() for heard in HEARD_AS]
TEA = "熟普洱茶是怎么发酵的？"


@pytest.fixture(scope="module")
def page_server() -> Iterator[LocalServer]:
    with serve_routes() as server:
        yield server


@pytest.fixture(scope="module")
def pages(page_server: LocalServer) -> dict[str, str]:
    return {name: page_server.html(f"/web/{name}", html) for name, html in PAGES.items()}


@pytest.fixture(scope="module")
def searxng(pages) -> Iterator[FakeSearxng]:
    with serve_routes() as server:
        fake = FakeSearxng(server)
        fake.answer(BEES, [(pages[n], n, f"about {n}") for n in ("tides", "raft", "bees", "sourdough", "volcano")])
        for heard in RAFT_HEARD:  # the question as typed, and as asr may write it down when it is spoken
            fake.answer(heard, [(pages[n], n, f"about {n}") for n in ("bees", "raft", "tides", "sourdough", "volcano")])
        fake.answer(TEA, [(pages[n], n, f"关于 {n}") for n in ("panda", "rail", "tea", "tofu", "wall")])
        yield fake


@pytest.fixture(scope="module")
def websearch(local_postgres, embedding_service, page_server, searxng) -> Iterator[str]:
    qdrant_dir = world_readable_tmpdir("lingxi-qdrant-answer-")
    settings = WebsearchSettings(
        database_url=fresh_database(local_postgres),
        qdrant_path=str(qdrant_dir),
        embedding_url=embedding_service,
        allowed_hosts=[page_server.netloc],
        searxng_url=searxng.url,
        fetch_timeout_s=5,
    )
    with serve_app(create_websearch(settings)) as url:
        wait_healthy(url, 60)
        yield url
    shutil.rmtree(qdrant_dir, ignore_errors=True)


@contextmanager
def websearch_at(running: Running, url: str) -> Iterator[Running]:
    """``running`` with its websearch sibling at ``url`` for the length of the block."""
    kept = running.app.state.siblings
    running.app.state.siblings = Siblings(running.app.state.settings.model_copy(update={"websearch_url": url}))
    try:
        yield running
    finally:
        running.app.state.siblings = kept


@pytest.fixture(scope="module")
def steady(websearch: str, embedding_service: str) -> Iterator[Running]:
    """The embedded default searching the web through the websearch service (its sentences attributed by meaning
    through the embedding service too), on a fixed thread count: its greedy answers (``temperature=0``; sampled at
    the model's own 0.7 it answered the tea question from the tofu page 2 times in 8) then do not change with how
    busy the machine is (llama.cpp's sums are ordered by it)."""
    siblings = {**NO_SIBLINGS, "websearch_url": websearch, "embedding_url": embedding_service}
    settings = Settings(threads=2, **siblings)
    with serve(create_app(settings), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="module")
def answering(steady: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{steady.url}/v1", api_key="none", max_retries=0, timeout=300)


def cited(content: str, annotations: list) -> list[str]:
    """The annotations' URLs, once each checked to point at a ``[n]`` of the content."""
    for annotation in annotations:
        assert annotation.type == "url_citation"
        span = annotation.url_citation
        assert MARKER.fullmatch(content[span.start_index : span.end_index]), (content, span)
        assert span.title
    return [annotation.url_citation.url for annotation in annotations]


def test_an_answer_cites_the_page_that_answers_it(answering, pages):
    completion = answering.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": RAFT}], web_search_options={}, temperature=0
    )
    message = completion.choices[0].message
    urls = cited(message.content, message.annotations)
    assert pages["raft"] in urls, message.content
    assert set(urls) <= set(pages.values())
    assert len(urls) == len(MARKER.findall(message.content))  # every [n] of a source is annotated


def test_a_chinese_question_gets_a_chinese_answer_citing_the_chinese_page(answering, pages):
    completion = answering.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": TEA}],
        web_search_options={"search_context_size": "low", "user_location": {"type": "approximate", "approximate": {}}},
        temperature=0,
    )
    message = completion.choices[0].message
    assert cjk_share(message.content) >= 0.5, message.content
    assert pages["tea"] in cited(message.content, message.annotations), message.content


def test_a_streamed_answer_brings_its_annotations_in_the_last_chunk(answering, pages):
    request = {
        "model": QWEN,
        "messages": [{"role": "user", "content": TEA}],
        "web_search_options": {},
        "temperature": 0,
    }
    with answering.chat.completions.stream(**request) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert pages["tea"] in cited(message.content, message.annotations), message.content

    chunks = list(answering.chat.completions.create(**request, stream=True))
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    finished = [chunk.choices[0] for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    [last] = finished
    rows = last.delta.model_extra["annotations"]
    assert rows and all(
        MARKER.fullmatch(content[r["url_citation"]["start_index"] : r["url_citation"]["end_index"]]) for r in rows
    )


def test_the_seed_api_answers_with_sources(steady, pages):
    with steady.client() as client:
        body = client.post(
            "/api/chat", json={"messages": [{"role": "user", "content": TEA}], "web_search": True}
        ).json()
        assert [source["number"] for source in body["sources"]] == [1, 2, 3]  # the best 3 of the 5 results
        assert pages["tea"] in {source["url"] for source in body["sources"]}
        assert MARKER.search(body["content"]) and cjk_share(body["content"]) >= 0.5, body["content"]
        assert body["raw"]["choices"][0]["message"]["annotations"]
        lines = client.post(
            "/api/chat/stream", json={"messages": [{"role": "user", "content": BEES}], "web_search": True}
        ).text.splitlines()
    assert '"sources"' in lines[0] and pages["bees"] in lines[0] and json.loads(lines[-1]) == {"event": "done"}


def test_web_search_not_configured_is_a_503_naming_the_setting(qwen):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none", max_retries=0)
    with websearch_at(qwen, ""), pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=QWEN, messages=[{"role": "user", "content": BEES}], web_search_options={})
    assert raised.value.status_code == 503 and "LLM_WEBSEARCH_URL" in raised.value.message


def test_websearch_down_is_a_502(qwen):
    with websearch_at(qwen, f"http://127.0.0.1:{free_port()}") as running:
        client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(
                model=QWEN, messages=[{"role": "user", "content": BEES}], web_search_options={}
            )
        assert raised.value.status_code == 502 and "websearch" in raised.value.message


@pytest.mark.parametrize("options", ["yes", {"search_context_size": "huge"}, {"user_location": "Beijing"}])
def test_bad_web_search_options_are_a_400(qwen, options):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": BEES}], web_search_options=options
        )
    assert "web_search_options" in raised.value.message


def test_null_web_search_options_is_a_plain_chat(qwen):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none", max_retries=0)
    with websearch_at(qwen, ""):  # a search would be a 503
        completion = client.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": "Hi"}], web_search_options=None, max_tokens=8
        )
    assert completion.choices[0].message.content and not completion.choices[0].message.annotations


@pytest.fixture(scope="module")
def talking(steady: Running, asr_service: str, tts_service: str) -> Iterator[Running]:
    """``steady`` hearing through the real asr service and speaking through the real tts service too."""
    kept = steady.app.state.siblings
    voices = {"asr_url": asr_service, "tts_url": tts_service}
    steady.app.state.siblings = Siblings(steady.app.state.settings.model_copy(update=voices))
    yield steady
    steady.app.state.siblings = kept


async def test_a_spoken_question_is_answered_from_the_web_naming_its_sources(talking, websearch, pages, tmp_path):
    question = spoken_pcm(RAFT, tmp_path / "raft")
    async with realtime_client(talking.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        searching = {"type": "realtime", "web_search_options": {}}  # lingxi's: not in OpenAI's session
        await connection.session.update(session=searching)  # type: ignore[arg-type]
        assert (await until(connection, "session.updated"))[-1]["session"]["web_search_options"] == {}
        await send_audio(connection, silence(300) + question + silence(900))
        events = await until_all(
            connection, "response.done", "conversation.item.input_audio_transcription.completed", timeout=300
        )
    heard = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert "raft" in heard["transcript"].lower()
    done = next(e for e in events if e["type"] == "response.done")["response"]
    said = done["output"][0]["content"][0]["transcript"]
    async with httpx.AsyncClient(base_url=websearch, timeout=60) as search:  # the titles websearch gives
        rows = (await search.get("/search/web", params={"q": RAFT})).json()["results"]
    titles = {row["url"]: row["title"] for row in rows}
    assert f"Sources: {titles[pages['raft']]}" in said, said
    assert not MARKER.search(said)  # the [n] are not read aloud
    assert len(audio_of(events)) > 48_000  # more than a second of speech


async def test_web_search_in_a_session_needs_the_websearch_service(qwen):
    with websearch_at(qwen, ""):
        async with realtime_client(qwen.url).realtime.connect(model="gpt-realtime") as connection:
            await until(connection, "session.created")
            await connection.send({"type": "session.update", "session": {"web_search_options": {}}, "event_id": "w"})
            error = (await until(connection, "error"))[-1]["error"]
            assert error["param"] == "session.web_search_options" and "LLM_WEBSEARCH_URL" in error["message"]
            bad = {"type": "session.update", "session": {"web_search_options": {"search_context_size": "huge"}}}
            await connection.send(bad)
            error = (await until(connection, "error"))[-1]["error"]
            assert error["param"] == "session.web_search_options" and "search_context_size" in error["message"]

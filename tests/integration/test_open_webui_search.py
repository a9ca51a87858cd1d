"""Open WebUI 0.12 uses lingxi as its web search, for real: its "external" search provider is websearch's
``POST /openwebui/search``, its external web loader ``POST /openwebui/load`` (both with the Bearer key), and its
RAG embeddings come from lingxi's embedding service; websearch searches a local server speaking SearXNG's JSON
API whose results are loopback pages in English and Chinese.

Opt-in, as tests/integration/test_open_webui.py (how Open WebUI is installed: tests/integration/open_webui.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LocalServer, serve_app, serve_routes, world_readable_tmpdir
from tests.integration.open_webui import EMBEDDER, needs_open_webui, offline_env, open_webui
from tests.websearch.searxng import FakeSearxng, fresh_database
from tests.websearch.web_pages import PAGES
from websearch.app import create_app
from websearch.config import Settings

KEY = "owui-search-key"

pytestmark = needs_open_webui


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[LocalServer, FakeSearxng]]:
    """The loopback pages, and a SearXNG-speaking server whose results point at them."""
    with serve_routes() as pages, serve_routes() as searxng_server:
        for name, html in PAGES.items():
            pages.html(f"/{name}", html)
        searxng = FakeSearxng(searxng_server)
        searxng.answer(
            "how does raft elect a leader",
            [
                (pages.url("/raft"), "Raft leader election", "A follower becomes a candidate..."),
                (pages.url("/tides"), "Why the sea has two tides a day", "Tides are caused..."),
                (pages.url("/bees"), "How honeybees share directions", "A forager bee..."),
            ],
        )
        searxng.answer(
            "熟普洱茶是怎么发酵的",
            [
                (pages.url("/tea"), "普洱茶的发酵", "熟茶经过渥堆发酵……"),
                (pages.url("/panda"), "四川的大熊猫保护", "大熊猫主要生活在……"),
            ],
        )
        yield pages, searxng


@pytest.fixture(scope="module")
def websearch(web, local_postgres, embedding_service: str) -> Iterator[str]:
    pages, searxng = web
    qdrant = world_readable_tmpdir("lingxi-qdrant-owui-")
    settings = Settings(
        database_url=fresh_database(local_postgres),
        qdrant_path=str(qdrant),
        embedding_url=embedding_service,
        allowed_hosts=[pages.netloc],  # the loopback pages stand in for the web
        searxng_url=searxng.url,
        api_key=KEY,
    )
    with serve_app(create_app(settings)) as url:
        yield url
    shutil.rmtree(qdrant, ignore_errors=True)


@pytest.fixture(scope="module")
def webui(websearch: str, embedding_service: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("open-webui-search")
    env = {
        **offline_env(data_dir),
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "false",
        "RAG_EMBEDDING_ENGINE": "openai",
        "RAG_EMBEDDING_MODEL": EMBEDDER,
        "RAG_OPENAI_API_BASE_URL": f"{embedding_service}/v1",
        "RAG_OPENAI_API_KEY": "none",
        "ENABLE_WEB_SEARCH": "true",
        "WEB_SEARCH_ENGINE": "external",
        "WEB_SEARCH_RESULT_COUNT": "3",
        "EXTERNAL_WEB_SEARCH_URL": f"{websearch}/openwebui/search",
        "EXTERNAL_WEB_SEARCH_API_KEY": KEY,
        "WEB_LOADER_ENGINE": "external",
        "EXTERNAL_WEB_LOADER_URL": f"{websearch}/openwebui/load",
        "EXTERNAL_WEB_LOADER_API_KEY": KEY,
        "ENABLE_LOCAL_WEB_FETCH": "true",  # Open WebUI checks result URLs too: the loopback pages stand in for the web
    }
    with open_webui(env, data_dir) as client:
        yield client


def web_search(webui: httpx.Client, query: str) -> dict[str, Any]:
    """What Open WebUI's chat does when web search is on: search, load the pages, embed them into a collection."""
    response = webui.post("/api/v1/retrieval/process/web/search", json={"queries": [query]})
    assert response.status_code == 200, response.text
    return response.json()


def best_passage(webui: httpx.Client, collection: str, question: str) -> str:
    found = webui.post(
        "/api/v1/retrieval/query/collection", json={"collection_names": [collection], "query": question, "k": 1}
    )
    assert found.status_code == 200, found.text
    return str(found.json()["documents"][0][0])


def test_open_webui_searches_loads_and_embeds_through_lingxi(webui: httpx.Client, web) -> None:
    pages, _ = web
    answer = web_search(webui, "how does raft elect a leader")
    links = [item["link"] for item in answer["items"]]  # ranked by lingxi: the answering page first
    assert links[0] == pages.url("/raft")
    assert sorted(links) == sorted(pages.url(p) for p in ("/raft", "/tides", "/bees"))
    assert answer["items"][0]["title"] == "Raft leader election"
    assert set(answer["filenames"]) == {pages.url(p) for p in ("/raft", "/tides", "/bees")}  # all three loaded
    passage = best_passage(webui, answer["collection_names"][0], "What does a follower do when it hears no heartbeat?")
    assert "candidate" in passage and "Home" not in passage  # the article's text, without the page's navigation


def test_open_webui_searches_in_chinese(webui: httpx.Client, web) -> None:
    pages, _ = web
    answer = web_search(webui, "熟普洱茶是怎么发酵的")
    assert answer["items"][0]["link"] == pages.url("/tea") and answer["items"][0]["title"] == "普洱茶的发酵"
    assert "渥堆发酵" in best_passage(webui, answer["collection_names"][0], "熟茶是怎样发酵的？")


def test_a_wrong_key_gets_open_webui_no_results(webui: httpx.Client, websearch: str) -> None:
    refused = httpx.post(
        f"{websearch}/openwebui/search", json={"query": "x", "count": 1}, headers={"Authorization": "Bearer wrong"}
    )
    assert refused.status_code == 401
    update = webui.get("/api/v1/retrieval/config").json()
    update["web"]["EXTERNAL_WEB_SEARCH_API_KEY"] = "wrong"
    assert webui.post("/api/v1/retrieval/config/update", json=update).status_code == 200
    failed = webui.post("/api/v1/retrieval/process/web/search", json={"queries": ["how does raft elect a leader"]})
    update["web"]["EXTERNAL_WEB_SEARCH_API_KEY"] = KEY
    assert webui.post("/api/v1/retrieval/config/update", json=update).status_code == 200
    assert failed.status_code == 404, failed.text  # Open WebUI logs the 401 and finds no results

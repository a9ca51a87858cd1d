"""Open WebUI's "external" web search provider and external web loader, called the way Open WebUI calls them
(backend/open_webui/retrieval/web/external.py and retrieval/loaders/external_web.py): a POST with its
User-Agent and ``Authorization: Bearer <key>``, and its own reading of the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from langchain_core.documents import Document

from tests.conftest import reply, serve_routes, wait_for_health
from tests.websearch.searxng import FakeSearxng, fresh_database
from tests.websearch.web_pages import PAGES
from websearch.app import create_app

KEY = "owui-secret"
SEARCH_AGENT = "Open WebUI (https://github.com/open-webui/open-webui) RAG Bot"
LOADER_AGENT = "Open WebUI (https://github.com/open-webui/open-webui) External Web Loader"


@pytest.fixture(scope="module")
def searxng() -> Iterator[FakeSearxng]:
    with serve_routes() as server:
        yield FakeSearxng(server)


@pytest.fixture(scope="module")
def lingxi(websearch_settings, local_postgres, searxng, tmp_path_factory) -> Iterator[TestClient]:
    settings = websearch_settings.model_copy(
        update={
            "database_url": fresh_database(local_postgres),
            "qdrant_path": str(tmp_path_factory.mktemp("qdrant-owui")),
            "searxng_url": searxng.url,
            "api_key": KEY,
        }
    )
    with TestClient(create_app(settings)) as client:
        wait_for_health(client)
        yield client


def search_external(client: TestClient, key: str, query: str, count: int) -> list[dict[str, str | None]]:
    """What Open WebUI's search_external does with the answer (its SearchResult fields)."""
    response = client.post(
        "/openwebui/search",
        headers={"User-Agent": SEARCH_AGENT, "Authorization": f"Bearer {key}"},
        json={"query": query, "count": count},
    )
    response.raise_for_status()
    return [
        {"link": r.get("link"), "title": r.get("title"), "snippet": r.get("snippet")} for r in response.json()[:count]
    ]


def external_web_loader(client: TestClient, key: str, urls: list[str]) -> list[Document]:
    """What Open WebUI's ExternalWebLoader.lazy_load does with the answer."""
    response = client.post(
        "/openwebui/load", headers={"User-Agent": LOADER_AGENT, "Authorization": f"Bearer {key}"}, json={"urls": urls}
    )
    response.raise_for_status()
    return [Document(page_content=r.get("page_content", ""), metadata=r.get("metadata", {})) for r in response.json()]


def test_open_webui_search_gets_links_titles_and_snippets(lingxi, searxng, page_server):
    urls = {name: page_server.html(f"/owui/{name}", PAGES[name]) for name in ("panda", "tea", "rail")}
    searxng.answer("大熊猫生活在哪里", [(urls[n], n, "…") for n in ("rail", "tea", "panda")])
    results = search_external(lingxi, KEY, "大熊猫生活在哪里", 3)
    assert [r["link"] for r in results][0] == urls["panda"] and len(results) == 3
    assert results[0]["title"] == "四川的大熊猫保护" and "熊猫" in (results[0]["snippet"] or "")
    assert set(r["link"] for r in results) == set(urls.values())


def test_open_webui_loader_gets_each_pages_text_and_skips_the_broken(lingxi, page_server):
    good = page_server.html("/owui/bees", PAGES["bees"])
    page_server.routes["/owui/pdf"] = reply(200, b"%PDF-1.4", "application/pdf")
    docs = external_web_loader(lingxi, KEY, [good, page_server.url("/owui/pdf"), "http://169.254.169.254/"])
    assert len(docs) == 1
    assert "waggle dance" in docs[0].page_content
    assert docs[0].metadata == {"source": good, "title": "How honeybees share directions"}


def test_the_bearer_key_is_required_when_set(lingxi):
    for key in ("", "wrong"):
        headers = {"User-Agent": SEARCH_AGENT, "Authorization": f"Bearer {key}"}
        response = lingxi.post("/openwebui/search", headers=headers, json={"query": "anything", "count": 3})
        assert response.status_code == 401
    assert lingxi.post("/openwebui/load", json={"urls": ["http://example.com/"]}).status_code == 401


def test_bad_open_webui_requests_are_400(lingxi):
    headers = {"Authorization": f"Bearer {KEY}"}
    for path, body in [
        ("/openwebui/search", {"query": "", "count": 3}),
        ("/openwebui/search", {"query": "x", "count": 0}),
        ("/openwebui/load", {"urls": []}),
        ("/openwebui/load", {"urls": ["http://example.com/"] * 6}),
    ]:
        response = lingxi.post(path, json=body, headers=headers)
        assert response.status_code == 400, (path, body, response.text)
    assert lingxi.post("/openwebui/search", json={"count": 3}, headers=headers).status_code == 422

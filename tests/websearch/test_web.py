"""Web search end to end: a local server speaking SearXNG's JSON API, loopback pages in Chinese and English,
a real PostgreSQL, embedded Qdrant and the real embedding service."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import LocalServer, free_port, reply, respond, serve_routes, wait_for_health
from tests.websearch.searxng import FakeSearxng, fresh_database
from tests.websearch.web_pages import PAGES
from websearch.app import create_app
from websearch.config import Settings


@pytest.fixture(scope="module")
def pages(page_server: LocalServer) -> dict[str, str]:
    return {name: page_server.html(f"/web/{name}", html) for name, html in PAGES.items()}


@pytest.fixture(scope="module")
def searxng() -> Iterator[FakeSearxng]:
    with serve_routes() as server:
        yield FakeSearxng(server)


@pytest.fixture(scope="module")
def web_settings(websearch_settings, local_postgres, searxng, tmp_path_factory) -> Settings:
    return websearch_settings.model_copy(
        update={
            "database_url": fresh_database(local_postgres),
            "qdrant_path": str(tmp_path_factory.mktemp("qdrant-web")),
            "searxng_url": searxng.url,
            "web_fetch_deadline_s": 2.0,
        }
    )


@pytest.fixture(scope="module")
def web(web_settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings)) as client:
        wait_for_health(client)
        yield client


def results_for(pages: dict[str, str], names: list[str]) -> list[tuple[str, str, str]]:
    return [(pages[name], f"result {name}", f"what the search engine says about {name}") for name in names]


def test_web_search_ingests_the_results_and_ranks_the_answering_page_first(web, searxng, pages):
    question = "how do bees tell each other where the flowers are?"
    searxng.answer(question, results_for(pages, ["tides", "raft", "bees", "sourdough", "volcano"]))
    response = web.get("/search/web", params={"q": question, "limit": 5, "lang": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"query", "results", "failed"} and body["query"] == question and body["failed"] == []
    assert searxng.asked[-1]["format"] == ["json"] and searxng.asked[-1]["language"] == ["en"]
    first = body["results"][0]
    assert set(first) == {"title", "url", "snippet", "page_id", "score", "published_at"}
    assert first["url"] == pages["bees"] and first["title"] == "How honeybees share directions"
    assert "waggle" in first["snippet"] or "bee" in first["snippet"]
    assert len(body["results"]) == 5 and [r["score"] for r in body["results"]] == sorted(
        (r["score"] for r in body["results"]), reverse=True
    )
    raft = next(r for r in body["results"] if r["url"] == pages["raft"])
    assert raft["published_at"].startswith("2024-03-05")
    stored = web.get("/page", params={"id": first["page_id"]}).json()  # ingested: the seed's searches see it
    assert stored["url"] == pages["bees"]
    keyword = web.get("/search/keyword", params={"q": "waggle dance"}).json()
    assert keyword[0]["url"] == pages["bees"]


def test_a_chinese_question_finds_the_chinese_page(web, searxng, pages):
    question = "熟普洱茶是怎么发酵的"
    searxng.answer(question, results_for(pages, ["panda", "rail", "tofu", "tea", "wall"]))
    body = web.get("/search/web", params={"q": question, "lang": "zh-CN"}).json()
    assert body["results"][0]["url"] == pages["tea"], body
    assert "发酵" in body["results"][0]["snippet"]


def test_fresh_pages_are_reused_not_fetched_again(web, searxng, page_server):
    hits: list[str] = []
    html = PAGES["volcano"].replace("How volcanoes erupt", "Volcano gases").encode()

    def counted(handler):
        hits.append(handler.path)
        respond(handler, 200, html, "text/html; charset=utf-8")

    page_server.routes["/web/counted"] = counted
    url = page_server.url("/web/counted")
    searxng.answer("volcano gases", [(url, "Volcano gases", "gases drive eruptions")])
    first = web.get("/search/web", params={"q": "volcano gases"}).json()
    started = time.perf_counter()
    second = web.get("/search/web", params={"q": "volcano gases"}).json()
    elapsed = time.perf_counter() - started
    assert hits == ["/web/counted"]  # fetched once, then reused from the store
    assert first["results"][0]["page_id"] == second["results"][0]["page_id"]
    assert elapsed < 2.0, elapsed


def test_stale_pages_are_fetched_again(web_settings, searxng, page_server, tmp_path):
    hits: list[str] = []
    page_server.routes["/web/stale"] = lambda h: (hits.append(h.path), reply(200, PAGES["tides"].encode())(h))
    searxng.answer("stale tides", [(page_server.url("/web/stale"), "Tides", "two tides a day")])
    never_fresh = web_settings.model_copy(update={"web_fresh_s": 0.0, "qdrant_path": str(tmp_path / "q")})
    with TestClient(create_app(never_fresh)) as client:
        wait_for_health(client)
        for _ in range(2):
            assert client.get("/search/web", params={"q": "stale tides"}).json()["results"]
    assert len(hits) == 2


def test_unsafe_result_urls_are_failed_and_never_fetched(web, searxng, pages):
    secret_hits: list[str] = []
    searxng.server.routes["/admin"] = lambda h: (secret_hits.append(h.path), reply(200, b"<p>secret</p>")(h))
    unsafe = [
        searxng.server.url("/admin"),  # loopback, not allowlisted (it is the backend's own address)
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]:9/",
        "file:///etc/passwd",
    ]
    searxng.answer("honeybee directions", [(u, "x", "y") for u in unsafe] + [(pages["bees"], "bees", "dance")])
    body = web.get("/search/web", params={"q": "honeybee directions", "limit": 10}).json()
    assert [r["url"] for r in body["results"]] == [pages["bees"]]
    assert [f["url"] for f in body["failed"]] == unsafe
    assert all(f["error"] for f in body["failed"])
    assert "non-public" in body["failed"][0]["error"] and "non-public" in body["failed"][1]["error"]
    assert secret_hits == []


def test_slow_and_broken_pages_do_not_fail_the_search(web, searxng, pages, page_server):
    def slow(handler):
        time.sleep(6)
        respond(handler, 200, PAGES["raft"].encode(), "text/html")

    page_server.routes["/web/slow"] = slow
    page_server.routes["/web/pdf"] = reply(200, b"%PDF-1.4", "application/pdf")
    broken = [page_server.url("/web/slow"), page_server.url("/web/missing"), page_server.url("/web/pdf")]
    searxng.answer("raft majority vote", [(u, "x", "y") for u in broken] + [(pages["raft"], "raft", "votes")])
    started = time.perf_counter()
    body = web.get("/search/web", params={"q": "raft majority vote"}).json()
    assert time.perf_counter() - started < 5.5  # the 2 s deadline, not the 6 s page
    assert [r["url"] for r in body["results"]] == [pages["raft"]]
    errors = {f["url"]: f["error"] for f in body["failed"]}
    assert list(errors) == broken
    assert "deadline" in errors[broken[0]] and "404" in errors[broken[1]] and "application/pdf" in errors[broken[2]]


def test_backend_down_is_502_naming_it_while_stored_search_works(web_settings, tmp_path):
    down = web_settings.model_copy(
        update={"searxng_url": f"http://127.0.0.1:{free_port()}", "qdrant_path": str(tmp_path / "q")}
    )
    with TestClient(create_app(down)) as client:
        wait_for_health(client)
        response = client.get("/search/web", params={"q": "raft"})
        assert response.status_code == 502 and "SearXNG at http://127.0.0.1" in response.json()["error"]["message"]
        assert client.get("/search/keyword", params={"q": "waggle dance"}).status_code == 200
        assert client.get("/health").status_code == 200


def test_json_format_off_is_said_in_words(web_settings, tmp_path):
    with serve_routes() as server:
        FakeSearxng(server, formats=("html",))
        html_only = web_settings.model_copy(update={"searxng_url": server.url(""), "qdrant_path": str(tmp_path / "q")})
        with TestClient(create_app(html_only)) as client:
            response = client.get("/search/web", params={"q": "raft"})
    message = response.json()["error"]["message"]
    assert response.status_code == 502 and "403" in message and "search.formats" in message and "json" in message


def test_no_backend_is_503_saying_what_to_set(web_settings, tmp_path):
    unset = web_settings.model_copy(update={"searxng_url": None, "qdrant_path": str(tmp_path / "q")})
    with TestClient(create_app(unset)) as client:
        response = client.get("/search/web", params={"q": "raft"})
    assert response.status_code == 503 and "WEBSEARCH_SEARXNG_URL" in response.json()["error"]["message"]


def test_bad_web_search_input_is_400(web):
    for params in ({"q": ""}, {"q": "x", "limit": 0}, {"q": "x", "limit": 11}, {"q": "x", "lang": "zh;1=1"}):
        response = web.get("/search/web", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["message"]

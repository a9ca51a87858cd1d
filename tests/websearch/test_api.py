"""websearch end to end: real PostgreSQL, embedded Qdrant, the real embedding service (its embedded default)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from tests.conftest import free_port, reply, wait_for_health
from tests.websearch.conftest import article
from websearch.app import create_app
from websearch.store import Store
from websearch.vectors import VectorStore

RAFT = article(
    "Raft leader election",
    [
        "Raft is a consensus algorithm for managing a replicated log across a cluster of servers.",
        "Servers start as followers. A follower that hears no heartbeat before its election timeout "
        "becomes a candidate, votes for itself and requests votes from the other servers.",
        "A candidate that wins votes from a majority becomes the leader for the term and sends heartbeats.",
    ],
    published="2024-03-05T08:00:00Z",
)
SOURDOUGH = article(
    "Keeping a sourdough starter alive",
    [
        "A sourdough starter is a culture of wild yeast and lactic acid bacteria living in flour and water.",
        "Feed the starter every day with equal weights of flour and water and keep it at room temperature.",
        "Bake bread when the starter doubles in size a few hours after feeding and smells pleasantly sour.",
    ],
)
PANDA = article(
    "四川的大熊猫保护",
    [
        "大熊猫是中国特有的珍稀动物，主要生活在四川、陕西和甘肃的山区竹林中，以竹子为主要食物。",
        "为了保护大熊猫，中国建立了卧龙等自然保护区，并修复了连接栖息地的竹林走廊。",
        "经过几十年的努力，野生大熊猫的数量稳步增长，受威胁等级也从濒危降为易危。",
    ],
    lang="zh-CN",
)
TEA = article(
    "普洱茶的发酵",
    [
        "普洱茶产自云南，以大叶种晒青毛茶为原料，分为生茶和熟茶两类。",
        "熟茶经过渥堆发酵，微生物在湿热环境中分解茶多酚，使茶汤变得红浓醇厚。",
        "生茶则在多年存放中缓慢陈化，口感由苦涩逐渐转为甘醇。",
    ],
    lang="zh-CN",
)


@pytest.fixture(scope="module")
def corpus(websearch, page_server):
    urls = {
        name: page_server.html(f"/{name}", html)
        for name, html in {"raft": RAFT, "sourdough": SOURDOUGH, "panda": PANDA, "tea": TEA}.items()
    }
    for url in urls.values():
        response = websearch.post("/ingest", json={"url": url})
        assert response.status_code == 200, response.text
    return urls


def test_health_names_the_service(websearch):
    body = websearch.get("/health").json()
    assert body["service"] == "websearch-api" and body["status"] == "ok"
    assert body["dependencies"] == {"postgres": "ok", "qdrant": "ok", "embedding": "ok", "index": "ok"}


def test_ingest_answers_in_the_seed_shape(websearch, page_server):
    url = page_server.html("/shape", RAFT.replace("Raft leader election", "Raft terms and votes"))
    body = websearch.post("/ingest", json={"url": url}).json()
    assert set(body) == {"chunks", "page_id", "published_at", "title", "url"}
    assert body["chunks"] >= 1 and isinstance(body["page_id"], int)
    assert body["title"] == "Raft terms and votes" and body["url"] == url
    assert body["published_at"].startswith("2024-03-05")


def test_page_by_url_and_id(websearch, corpus):
    by_url = websearch.get("/page", params={"url": corpus["panda"]}).json()
    assert set(by_url) == {"content", "fetched_at", "html", "id", "lang", "published_at", "site", "title", "url"}
    assert by_url["lang"] == "zh" and "大熊猫" in by_url["content"] and by_url["html"].startswith("<!doctype")
    assert by_url["fetched_at"].endswith("GMT")
    assert websearch.get("/page", params={"id": by_url["id"]}).json()["url"] == corpus["panda"]
    assert websearch.get("/page", params={"id": 999999}).status_code == 404
    assert websearch.get("/page").status_code == 400


def test_keyword_search_finds_chinese_and_english(websearch, corpus):
    results = websearch.get("/search/keyword", params={"q": "大熊猫 保护区", "limit": 5}).json()
    assert results and results[0]["url"] == corpus["panda"]
    assert set(results[0]) == {"chunk_index", "score", "score_hint", "snippet", "title", "url"}
    assert results[0]["score_hint"] == "keyword"
    two_chars = websearch.get("/search/keyword", params={"q": "熊猫"}).json()
    assert two_chars and two_chars[0]["url"] == corpus["panda"]
    tea = websearch.get("/search/keyword", params={"q": "渥堆发酵"}).json()
    assert tea and tea[0]["url"] == corpus["tea"] and "渥堆" in tea[0]["snippet"]
    english = websearch.get("/search/keyword", params={"q": "sourdough starter"}).json()
    assert english[0]["url"] == corpus["sourdough"]
    typo = websearch.get("/search/keyword", params={"q": "sourdogh"}).json()
    assert typo and typo[0]["url"] == corpus["sourdough"]


def test_semantic_search_understands_paraphrases(websearch, corpus):
    results = websearch.get("/search/semantic", params={"q": "how do servers pick a new leader?", "limit": 3}).json()
    assert results[0]["url"] == corpus["raft"]
    assert results[0]["score_hint"] == "semantic" and 0 < results[0]["score"] <= 1
    bread = websearch.get("/search/semantic", params={"q": "feeding wild yeast to bake bread"}).json()
    assert bread[0]["url"] == corpus["sourdough"]


@pytest.mark.parametrize(
    "query, page",
    [
        ("leader election votes majority", "raft"),
        ("大熊猫", "panda"),
        ("普洱茶 熟茶", "tea"),
        ("bake sourdough bread", "sourdough"),
    ],
)
def test_hybrid_ranks_the_right_page_first(websearch, corpus, query, page):
    for fusion in ("minmax", "rrf"):
        results = websearch.get(
            "/search/hybrid", params={"q": query, "limit": 5, "alpha": 0.7, "fusion": fusion}
        ).json()
        assert results[0]["url"] == corpus[page], (fusion, results)
        assert results[0]["score_hint"] == "hybrid"
        keys = [(r["url"], r["chunk_index"]) for r in results]
        assert len(keys) == len(set(keys))


def store_state(settings, url):
    """What PostgreSQL and Qdrant hold for one URL, read directly."""

    async def read():
        store = Store(settings.database_url)
        await store.pool.open(wait=True)
        try:
            async with store.connection() as conn:
                page = await (await conn.execute("SELECT id FROM pages WHERE url = %s", (url,))).fetchone()
                ids = []
                if page:
                    rows = await (
                        await conn.execute("SELECT id FROM chunks WHERE page_id = %s", (page["id"],))
                    ).fetchall()
                    ids = [r["id"] for r in rows]
                all_chunks = {r["id"] for r in await (await conn.execute("SELECT id FROM chunks")).fetchall()}
            return page, ids, all_chunks
        finally:
            await store.close()

    return asyncio.run(read())


def test_reingest_keeps_the_page_id_and_replaces_chunks_and_vectors(websearch, websearch_settings, page_server):
    url = page_server.html("/changing", SOURDOUGH)
    first = websearch.post("/ingest", json={"url": url}).json()
    again = websearch.post("/ingest", json={"url": url}).json()
    assert again["unchanged"] is True and again["page_id"] == first["page_id"]
    page_server.html("/changing", SOURDOUGH.replace("every day", "twice a day").replace("Keeping", "Caring for"))
    changed = websearch.post("/ingest", json={"url": url}).json()
    assert changed["page_id"] == first["page_id"] and "unchanged" not in changed
    assert changed["title"] == "Caring for a sourdough starter alive"
    page, chunk_ids, all_chunks = store_state(websearch_settings, url)
    assert len(chunk_ids) == changed["chunks"]
    vector_ids = qdrant_ids(websearch)
    assert vector_ids == all_chunks  # every vector belongs to a live chunk, every chunk has its vector
    hits = websearch.get("/search/keyword", params={"q": "twice a day", "limit": 50}).json()
    assert [h["chunk_index"] for h in hits if h["url"] == url] == sorted(
        {h["chunk_index"] for h in hits if h["url"] == url}
    )


def qdrant_ids(client: TestClient) -> set[int]:
    return client.portal.call(client.app.state.index.vectors.ids)  # type: ignore[union-attr]


def test_failed_qdrant_write_leaves_nothing_behind(websearch_settings, page_server):
    broken = websearch_settings.model_copy(update={"qdrant_url": f"http://127.0.0.1:{free_port()}"})
    url = page_server.html("/qdrant-down", TEA.replace("普洱茶", "滇红茶"))
    with TestClient(create_app(broken)) as client:
        response = client.post("/ingest", json={"url": url})
        assert response.status_code == 503 and "Qdrant" in response.json()["error"]["message"]
        health = client.get("/health")
        assert health.status_code == 503 and "qdrant" in health.json()["detail"]
    page, _, _ = store_state(websearch_settings, url)
    assert page is None


def test_embedding_down_is_503_and_stores_nothing(websearch_settings, page_server, tmp_path):
    down = websearch_settings.model_copy(
        update={"embedding_url": f"http://127.0.0.1:{free_port()}", "qdrant_path": str(tmp_path / "qdrant")}
    )
    url = page_server.html("/embedding-down", RAFT.replace("Raft", "Paxos"))
    with TestClient(create_app(down)) as client:
        response = client.post("/ingest", json={"url": url})
        assert response.status_code == 503 and "embedding" in response.json()["error"]["message"]
        assert "embedding" in client.get("/health").json()["detail"]
    assert store_state(websearch_settings, url)[0] is None


def test_private_urls_are_refused_unless_allowlisted(websearch_settings, page_server, tmp_path):
    url = page_server.html("/private", RAFT)
    strict = websearch_settings.model_copy(update={"allowed_hosts": [], "qdrant_path": str(tmp_path / "qdrant")})
    with TestClient(create_app(strict)) as client:
        wait_for_health(client)
        refused = client.post("/ingest", json={"url": url})
        assert refused.status_code == 400 and "non-public" in refused.json()["error"]["message"]
        for metadata in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://10.0.0.1/"):
            assert client.post("/ingest", json={"url": metadata}).status_code == 400


def test_bulk_ingest_reports_each_url_in_order(websearch, page_server):
    good = [page_server.html(f"/bulk{i}", SOURDOUGH.replace("sourdough", f"rye{i}")) for i in range(2)]
    bad = page_server.url("/does-not-exist")
    results = websearch.post("/bulk_ingest", json={"urls": [good[0], bad, good[1]]}).json()
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[1]["url"] == bad and "404" in results[1]["error"]
    assert results[0]["url"] == good[0] and results[2]["chunks"] >= 1
    too_many = websearch.post("/bulk_ingest", json={"urls": good * 3})
    assert too_many.status_code == 400
    assert websearch.post("/bulk_ingest", json={"urls": []}).status_code == 400


def test_bad_input_gets_4xx(websearch, page_server):
    page_server.routes["/binary"] = reply(200, b"%PDF-1.4 ...", "application/pdf")
    page_server.routes["/huge"] = reply(200, b"<html>" + b"x" * 300_000 + b"</html>")
    cases = [
        (websearch.post("/ingest", json={}), 422),
        (websearch.post("/ingest", json={"url": "not a url"}), 400),
        (websearch.post("/ingest", json={"url": "ftp://example.com/file"}), 400),
        (websearch.post("/ingest", json={"url": page_server.url("/binary")}), 415),
        (websearch.post("/ingest", json={"url": page_server.url("/huge")}), 413),
        (websearch.post("/ingest", json={"url": f"http://127.0.0.1:{free_port()}/"}), 400),
        (websearch.post("/ingest", content=b"{oops", headers={"Content-Type": "application/json"}), 400),
        (websearch.get("/search/keyword", params={"q": ""}), 400),
        (websearch.get("/search/keyword", params={"q": "   "}), 400),
        (websearch.get("/search/semantic", params={"q": "x", "limit": 0}), 400),
        (websearch.get("/search/semantic", params={"q": "x", "limit": 1000}), 400),
        (websearch.get("/search/hybrid", params={"q": "x", "alpha": 1.5}), 400),
        (websearch.get("/search/hybrid", params={"q": "x", "fusion": "magic"}), 400),
        (websearch.get("/search/hybrid", params={"q": "x", "limit": "ten"}), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["error"]["message"]
    assert "application/pdf" in cases[3][0].json()["error"]["message"]


def test_unreachable_allowlisted_host_is_a_clear_4xx(websearch_settings, tmp_path):
    port = free_port()
    settings = websearch_settings.model_copy(
        update={"allowed_hosts": [f"127.0.0.1:{port}"], "qdrant_path": str(tmp_path / "qdrant")}
    )
    with TestClient(create_app(settings)) as client:
        wait_for_health(client)
        response = client.post("/ingest", json={"url": f"http://127.0.0.1:{port}/"})
        assert response.status_code == 422 and "could not fetch" in response.json()["error"]["message"]


def test_vector_store_roundtrip_in_embedded_mode(tmp_path):
    async def roundtrip():
        store = VectorStore(url=None, path=str(tmp_path / "q"), collection="t")
        try:
            await store.upsert([1, 2], [[1.0, 0.0], [0.0, 1.0]], [{"url": "a"}, {"url": "b"}])
            hits = await store.search([0.9, 0.1], 2)
            await store.delete([1])
            return hits, await store.ids()
        finally:
            await store.close()

    hits, remaining = asyncio.run(roundtrip())
    assert hits[0][0] == 1 and remaining == {2}

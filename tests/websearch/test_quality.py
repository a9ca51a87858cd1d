"""Retrieval quality on the labelled bilingual set in tests/data/websearch (44 pages, 52 queries)."""

from __future__ import annotations

import functools
import json
import statistics
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.postgres import LocalPostgres
from tests.conftest import wait_for_health
from websearch.app import create_app

DATA = Path(__file__).resolve().parents[1] / "data" / "websearch"
QUERIES = json.loads((DATA / "queries.json").read_text())


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def labelled(local_postgres, websearch_settings, tmp_path_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(DATA / "pages")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    database = LocalPostgres(local_postgres.data_dir, port=local_postgres.port, database="labelled")
    database.start()  # a second database in the same cluster: this corpus stays apart from the other tests
    settings = websearch_settings.model_copy(
        update={
            "database_url": database.url,
            "qdrant_path": str(tmp_path_factory.mktemp("qdrant-labelled")),
            "allowed_hosts": [f"127.0.0.1:{port}"],
            "bulk_max_urls": 50,
        }
    )
    base = f"http://127.0.0.1:{port}/"
    with TestClient(create_app(settings)) as client:
        wait_for_health(client)
        urls = [base + page.name for page in sorted((DATA / "pages").glob("*.html"))]
        results = client.post("/bulk_ingest", json={"urls": urls}).json()
        assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
        yield client, base
    server.shutdown()


def recall_at_5(client, base, mode, query):
    found = client.get(f"/search/{mode}", params={"q": query["query"], "limit": 30}).json()
    pages = list(dict.fromkeys(r["url"].removeprefix(base) for r in found))[:5]
    return len(set(pages) & set(query["relevant"])) / len(query["relevant"])


def test_keyword_queries_find_their_page_in_both_languages(labelled):
    client, base = labelled
    for lang in ("en", "zh"):
        queries = [q for q in QUERIES if q["lang"] == lang and q["kind"] == "keyword"]
        hits = [recall_at_5(client, base, "keyword", q) > 0 for q in queries]
        assert len(queries) >= 8
        assert sum(hits) / len(hits) >= 0.9, [q["query"] for q, hit in zip(queries, hits, strict=True) if not hit]


def test_hybrid_is_at_least_as_good_as_either_mode_alone(labelled):
    client, base = labelled
    recall = {
        mode: statistics.mean(recall_at_5(client, base, mode, q) for q in QUERIES)
        for mode in ("keyword", "semantic", "hybrid")
    }
    assert recall["hybrid"] >= max(recall["keyword"], recall["semantic"]), recall
    assert recall["hybrid"] >= 0.7, recall


def top_3(client, base, mode, query):
    found = client.get(f"/search/{mode}", params={"q": query, "limit": 30}).json()
    return list(dict.fromkeys(r["url"].removeprefix(base) for r in found))[:3]


@pytest.mark.parametrize(
    ("mode", "query", "page"),
    [
        ("semantic", "秦朝皇帝陵墓里陪葬的陶制军队", "zh-terracotta-army.html"),  # Chinese, no shared keyword
        ("hybrid", "月亮最圆那天吃的传统糕饼和相关的神话故事", "zh-mid-autumn-festival.html"),
        ("semantic", "蜜蜂跳舞告诉同伴蜜源的方向和距离", "en-honeybee-waggle-dance.html"),  # Chinese → English page
        ("semantic", "hutong alleys and courtyard houses of old Beijing", "zh-beijing-hutong.html"),  # and back
    ],
)
def test_chinese_and_cross_lingual_questions_find_their_page_in_the_top_3(labelled, mode, query, page):
    client, base = labelled
    assert page in top_3(client, base, mode, query)


def test_semantic_search_on_chinese_and_across_languages(labelled):
    """The embedded multilingual default: most Chinese paraphrases and cross-lingual questions hit the top 3."""
    client, base = labelled
    for lang in ("zh", "cross"):
        queries = [q for q in QUERIES if q["lang"] == lang and q["kind"] == "paraphrase"]
        hits = [bool(set(top_3(client, base, "semantic", q["query"])) & set(q["relevant"])) for q in queries]
        missed = [q["query"] for q, hit in zip(queries, hits, strict=True) if not hit]
        assert sum(hits) / len(hits) >= 0.7, (lang, missed)

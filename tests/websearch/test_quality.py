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
from tests.websearch.conftest import wait_healthy
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
        wait_healthy(client)
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

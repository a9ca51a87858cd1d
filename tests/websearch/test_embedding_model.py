"""An index built with another embedding model is detected and reported, never mixed with new vectors."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from tests.websearch.conftest import article
from websearch.app import create_app

PAGE = article("珠算", ["算盘是中国传统的计算工具，用木框和串在档上的算珠进行加减乘除。"], lang="zh-CN")


def build_collection(path: str, model: str, dimension: int) -> None:
    async def make() -> None:
        from qdrant_client import AsyncQdrantClient, models

        client = AsyncQdrantClient(path=path)
        vectors = models.VectorParams(size=dimension, distance=models.Distance.COSINE)
        await client.create_collection("websearch_chunks", vectors_config=vectors, metadata={"embedding_model": model})
        await client.close()

    asyncio.run(make())


def health_once_checked(client: TestClient, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if "index" in body.get("dependencies", {}):
            return body
        time.sleep(0.2)
    raise AssertionError(f"websearch never checked its index: {body}")


@pytest.mark.parametrize(("model", "dimension"), [("all-MiniLM-L6-v2", 384), ("another-512-model", 512)])
def test_an_index_of_another_model_is_reported_and_refused(websearch_settings, page_server, tmp_path, model, dimension):
    path = str(tmp_path / "qdrant")
    build_collection(path, model, dimension)
    url = page_server.html(f"/mismatch-{dimension}", PAGE)
    with TestClient(create_app(websearch_settings.model_copy(update={"qdrant_path": path}))) as client:
        health = health_once_checked(client)
        assert health["status"] == "error" and model in health["detail"] and "Re-index" in health["detail"]
        assert "use-multilingual-v3" in health["dependencies"]["index"]
        semantic = client.get("/search/semantic", params={"q": "算盘怎么用"})
        assert semantic.status_code == 503 and "Re-index" in semantic.json()["error"]["message"]
        ingest = client.post("/ingest", json={"url": url})
        assert ingest.status_code == 503 and model in ingest.json()["error"]["message"]
        assert client.portal.call(client.app.state.index.vectors.ids) == set()  # type: ignore[union-attr]
        assert client.get("/search/keyword", params={"q": "算盘"}).status_code == 200  # keyword search still works


def test_a_new_index_records_its_model(websearch_settings, page_server, tmp_path):
    url = page_server.html("/tagged", PAGE)
    with TestClient(create_app(websearch_settings.model_copy(update={"qdrant_path": str(tmp_path / "q")}))) as client:
        assert health_once_checked(client)["dependencies"]["index"] == "ok"
        assert client.post("/ingest", json={"url": url}).status_code == 200
        vectors = client.app.state.index.vectors  # type: ignore[union-attr]
        info = client.portal.call(vectors.client.get_collection, vectors.collection)
        assert info.config.metadata == {"embedding_model": "use-multilingual-v3"}
        assert client.get("/search/semantic", params={"q": "算盘怎么用"}).json()[0]["url"] == url

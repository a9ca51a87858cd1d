"""websearch benchmark: ingest throughput, search latency at 1k/10k/50k chunks, retrieval quality.

    .venv/bin/python bench/websearch.py [--sizes 1000,10000,50000] [--embedding-url URL]

Starts (all on 127.0.0.1): a throw-away PostgreSQL cluster, the real embedding service (MiniLM) unless
--embedding-url is given, a page server for tests/data/websearch, and the websearch service.
Quality: recall@5 and nDCG@10 over distinct pages, per mode, on the labelled bilingual set.
Latency: the corpus is padded with synthetic chunks (sentences of the corpus recombined, random unit
vectors — latency does not depend on what the vectors mean) written straight into PostgreSQL and Qdrant.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import random
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.postgres import LocalPostgres  # noqa: E402
from tests.conftest import free_port, running_service, world_readable_tmpdir  # noqa: E402
from websearch.chunking import split_sentences  # noqa: E402
from websearch.store import Store  # noqa: E402
from websearch.tokens import index_text  # noqa: E402
from websearch.vectors import VectorStore  # noqa: E402

DATA = ROOT / "tests" / "data" / "websearch"
MODES = ("keyword", "semantic", "hybrid")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_pages() -> tuple[ThreadingHTTPServer, int]:
    handler = functools.partial(QuietHandler, directory=str(DATA / "pages"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def page_ranking(results: list[dict], base: str) -> list[str]:
    seen: dict[str, None] = {}
    for result in results:
        seen.setdefault(result["url"].removeprefix(base), None)
    return list(seen)


def recall_at(ranking: list[str], relevant: list[str], k: int) -> float:
    return len(set(ranking[:k]) & set(relevant)) / len(relevant)


def ndcg_at(ranking: list[str], relevant: list[str], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, page in enumerate(ranking[:k]) if page in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def pad_with_synthetic_chunks(settings: dict, total: int, start_id: int, sentences: list[str]) -> int:
    """Add synthetic pages of 10 chunks each until the index holds ``total`` chunks."""
    store = Store(settings["WEBSEARCH_DATABASE_URL"])
    await store.pool.open(wait=True)
    vectors = VectorStore(url=None, path=settings["WEBSEARCH_QDRANT_PATH"], collection="websearch_chunks")
    rng = random.Random(start_id)
    pool = [" ".join(rng.sample(sentences, 4)) for _ in range(500)]
    tokens = [index_text(text) for text in pool]
    try:
        _, have = await store.counts()
        page_no = start_id
        while have < total:
            async with store.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "INSERT INTO pages (url, title, site, lang, content, content_hash) "
                    "VALUES (%s, %s, 'synthetic', 'en', '', '') RETURNING id",
                    (f"https://synthetic.invalid/{page_no}", f"Synthetic page {page_no}"),
                )
                page_id = (await cursor.fetchone())["id"]
                ids = []
                for chunk_index in range(10):
                    pick = rng.randrange(len(pool))
                    cursor = await conn.execute(
                        "INSERT INTO chunks (page_id, chunk_index, text, tokens) "
                        "VALUES (%s, %s, %s, to_tsvector('simple', %s)) RETURNING id",
                        (page_id, chunk_index, pool[pick], tokens[pick]),
                    )
                    ids.append((await cursor.fetchone())["id"])
            dim = vectors.dimension or 384
            random_vectors = []
            for _ in ids:
                v = [rng.gauss(0, 1) for _ in range(dim)]
                norm = math.sqrt(sum(x * x for x in v))
                random_vectors.append([x / norm for x in v])
            await vectors.upsert(ids, random_vectors, [{"page_id": page_id, "chunk_index": i} for i in range(10)])
            have += 10
            page_no += 1
        return page_no
    finally:
        await vectors.close()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--embedding-url")
    parser.add_argument("--latency-queries", type=int, default=30)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    queries = json.loads((DATA / "queries.json").read_text())
    pages = sorted(p.name for p in (DATA / "pages").glob("*.html"))

    with ExitStack() as stack:
        root = world_readable_tmpdir("lingxi-bench-ws-")
        database = LocalPostgres(root / "postgres", port=free_port())
        database.start()
        stack.callback(database.stop)
        embedding_url = args.embedding_url or stack.enter_context(running_service("embedding"))
        server, pages_port = serve_pages()
        stack.callback(server.shutdown)
        base = f"http://127.0.0.1:{pages_port}/"
        env = {
            "WEBSEARCH_DATABASE_URL": database.url,
            "WEBSEARCH_QDRANT_PATH": str(root / "qdrant"),
            "WEBSEARCH_EMBEDDING_URL": embedding_url,
            "WEBSEARCH_ALLOWED_HOSTS": f"127.0.0.1:{pages_port}",
        }
        rows: list[str] = []
        with running_service("websearch", env) as ws, httpx.Client(base_url=ws, timeout=300) as client:
            started = time.perf_counter()
            for name in pages[:8]:
                assert client.post("/ingest", json={"url": base + name}).status_code == 200
            sequential = 8 / (time.perf_counter() - started)
            started = time.perf_counter()
            results = client.post("/bulk_ingest", json={"urls": [base + n for n in pages[8:]]}).json()
            assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
            bulk = len(results) / (time.perf_counter() - started)
            chunks = sum(r["chunks"] for r in results)
            rows.append(
                f"ingest: {sequential:.2f} pages/s one by one, {bulk:.2f} pages/s bulk (4 at a time); "
                f"{len(pages)} pages"
            )

            quality: dict[str, dict[str, list[float]]] = {m: {"recall@5": [], "ndcg@10": []} for m in MODES}
            for query in queries:
                for mode in MODES:
                    found = client.get(f"/search/{mode}", params={"q": query["query"], "limit": 50}).json()
                    ranking = page_ranking(found, base)
                    quality[mode]["recall@5"].append(recall_at(ranking, query["relevant"], 5))
                    quality[mode]["ndcg@10"].append(ndcg_at(ranking, query["relevant"], 10))
            quality_rows = [
                (mode, statistics.mean(q["recall@5"]), statistics.mean(q["ndcg@10"])) for mode, q in quality.items()
            ]
        sentences = [
            s for p in pages for s in split_sentences(Path(DATA / "pages" / p).read_text()) if 20 < len(s) < 300
        ]

        latency_rows = []
        next_page = 1
        for size in sizes:
            next_page = asyncio.run(pad_with_synthetic_chunks(env, size, next_page, sentences))
            with running_service("websearch", env) as ws, httpx.Client(base_url=ws, timeout=60) as client:
                sample = [q["query"] for q in queries][: args.latency_queries]
                for mode in MODES:
                    client.get(f"/search/{mode}", params={"q": sample[0]})  # warm
                    timings = []
                    for q in sample:
                        t0 = time.perf_counter()
                        assert client.get(f"/search/{mode}", params={"q": q, "limit": 10}).status_code == 200
                        timings.append((time.perf_counter() - t0) * 1000)
                    latency_rows.append((size, mode, percentile(timings, 0.5), percentile(timings, 0.95)))

    print(f"\nwebsearch benchmark — {len(pages)} labelled pages ({chunks}+ chunks), {len(queries)} queries")
    print(rows[0])
    print(f"\n{'mode':<10} {'recall@5':>9} {'nDCG@10':>9}")
    for mode, recall, ndcg in quality_rows:
        print(f"{mode:<10} {recall:>9.3f} {ndcg:>9.3f}")
    best_single = max(r for m, r, _ in quality_rows if m != "hybrid")
    hybrid = next(r for m, r, _ in quality_rows if m == "hybrid")
    print(f"hybrid recall@5 / best single mode = {hybrid / best_single:.3f} (target ≥ 1)")
    print(f"\n{'chunks':>7} {'mode':<10} {'p50 ms':>8} {'p95 ms':>8}")
    for size, mode, p50, p95 in latency_rows:
        print(f"{size:>7} {mode:<10} {p50:>8.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()

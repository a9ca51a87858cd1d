"""/search/web benchmark: fresh vs stored latency, and which page ranks first on a labelled set.

    .venv/bin/python bench/websearch_web.py [--rounds 8] [--delay-ms 150-400]

Starts (all on 127.0.0.1): a throw-away PostgreSQL cluster, the real embedding service, a page server for
tests/data/websearch/pages (each response delayed by a random 150-400 ms, standing in for the network), a
server speaking SearXNG's JSON API (tests/websearch/searxng.py) and the websearch service.

Labelled set: every query of tests/data/websearch/queries.json with one relevant page (47, English, Chinese
and cross-language); the backend answers 5 results — the relevant page at a seeded random position, its near
neighbour (Python the language / the snake, …) when it has one, and random other pages.

Latency: each fresh round asks a question whose 5 results are pages at new URLs (nothing stored), and is
compared with its budget: the slowest of those pages' fetch time (measured directly) + the time to embed
that page's chunks (measured directly). Stored: the same questions again, every page fresh in the store.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.postgres import LocalPostgres  # noqa: E402
from tests.conftest import free_port, respond, running_service, serve_routes, world_readable_tmpdir  # noqa: E402
from tests.websearch.searxng import FakeSearxng  # noqa: E402
from websearch.chunking import chunk_text  # noqa: E402
from websearch.extract import extract  # noqa: E402

DATA = ROOT / "tests" / "data" / "websearch"
NEIGHBOURS = [
    ("en-python-language.html", "en-python-snakes.html"),
    ("en-java-island.html", "en-java-language.html"),
    ("en-mercury-element.html", "en-mercury-planet.html"),
    ("zh-apple-inc.html", "zh-apple-orchard.html"),
    ("zh-mid-autumn-festival.html", "zh-change-lunar-program.html"),
    ("zh-silk-road.html", "zh-sericulture.html"),
]


def labelled_set(seed: int = 40) -> list[tuple[dict, list[str]]]:
    rng = random.Random(seed)
    pages = sorted(p.name for p in (DATA / "pages").iterdir())
    neighbour = {a: b for a, b in NEIGHBOURS} | {b: a for a, b in NEIGHBOURS}
    cases = []
    for query in json.loads((DATA / "queries.json").read_text()):
        if len(query["relevant"]) != 1:
            continue
        [answer] = query["relevant"]
        others = [neighbour[answer]] if answer in neighbour else []
        others += rng.sample([p for p in pages if p != answer and p not in others], 4 - len(others))
        results = others[:]
        results.insert(rng.randrange(5), answer)
        cases.append((query, results))
    return cases


def page_server(delay_ms: tuple[int, int]):
    """Serve the pages at /<anything>/<name>, each after a random delay."""
    stack = ExitStack()
    server = stack.enter_context(serve_routes())
    rng = random.Random(7)
    for path in (DATA / "pages").iterdir():
        body = path.read_bytes()

        def route(handler, body=body):
            time.sleep(rng.uniform(*delay_ms) / 1000)
            respond(handler, 200, body, "text/html; charset=utf-8")

        for prefix in ["set", *(f"r{i}" for i in range(100))]:
            server.routes[f"/{prefix}/{path.name}"] = route
    return stack, server


def websearch_env(database_url: str, root: Path, embedding: str, pages: str, searxng: str) -> dict[str, str]:
    """websearch over the bench's PostgreSQL, its own Qdrant under ``root``, the loopback ``pages`` host and a
    SearXNG-speaking server."""
    return {
        "WEBSEARCH_DATABASE_URL": database_url,
        "WEBSEARCH_QDRANT_PATH": str(root / "qdrant"),
        "WEBSEARCH_EMBEDDING_URL": embedding,
        "WEBSEARCH_ALLOWED_HOSTS": pages,
        "WEBSEARCH_SEARXNG_URL": searxng,
        "WEBSEARCH_LOG_LEVEL": "warning",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--delay-ms", default="150-400")
    args = parser.parse_args()
    low, high = (int(x) for x in args.delay_ms.split("-"))
    cases = labelled_set()
    with ExitStack() as stack:
        root = world_readable_tmpdir("lingxi-bench-web-")
        database = LocalPostgres(root / "postgres", port=free_port())
        database.start()
        stack.callback(database.stop)
        embedding = stack.enter_context(running_service("embedding"))
        pages_stack, pages = page_server((low, high))
        stack.enter_context(pages_stack)
        searxng = FakeSearxng(stack.enter_context(serve_routes()))
        env = websearch_env(database.url, root, embedding, pages.netloc, searxng.url)
        ws = stack.enter_context(running_service("websearch", env))
        client = stack.enter_context(httpx.Client(base_url=ws, timeout=120, trust_env=False))
        embed = stack.enter_context(httpx.Client(base_url=embedding, timeout=120, trust_env=False))

        # fresh vs stored latency
        rows = []
        for i in range(args.rounds):
            query, results = cases[i * 5 % len(cases)]
            urls = [pages.url(f"/r{i}/{name}") for name in results]
            searxng.answer(f"round {i} {query['query']}", [(u, "", "") for u in urls])
            started = time.perf_counter()
            body = client.get("/search/web", params={"q": f"round {i} {query['query']}"}).json()
            fresh = time.perf_counter() - started
            assert not body["failed"], body["failed"]
            started = time.perf_counter()
            client.get("/search/web", params={"q": f"round {i} {query['query']}"}).raise_for_status()
            stored = time.perf_counter() - started
            budget, budget_all = slowest_page_budget(urls, embed)
            rows.append((fresh, stored, budget, budget_all))
            print(f"round {i}: fresh {fresh:.3f} s, stored {stored:.3f} s, budgets {budget:.3f} / {budget_all:.3f} s")

        # ranking on the labelled set
        first: dict[str, list[bool]] = {}
        for query, results in cases:
            searxng.answer(query["query"], [(pages.url(f"/set/{name}"), "", "") for name in results])
            body = client.get("/search/web", params={"q": query["query"], "limit": 5}).json()
            top = body["results"][0]["url"].rsplit("/", 1)[1] if body["results"] else None
            first.setdefault(query["lang"], []).append(top == query["relevant"][0])
    fresh, stored, budget, budget_all = (sorted(col) for col in zip(*rows, strict=True))
    print("\n| measure | p50 | max |\n|---|---|---|")
    print(f"| fresh question, 5 pages (s) | {statistics.median(fresh):.3f} | {max(fresh):.3f} |")
    print(f"| budget: slowest fetch + its embedding (s) | {statistics.median(budget):.3f} | {max(budget):.3f} |")
    ratios = [r[0] / r[2] for r in rows]
    print(f"| fresh / budget | {statistics.median(ratios):.2f} | {max(ratios):.2f} |")
    every = f"{statistics.median(budget_all):.3f} | {max(budget_all):.3f}"
    print(f"| budget: slowest fetch + all chunks' embedding (s) | {every} |")
    ratios = [r[0] / r[3] for r in rows]
    print(f"| fresh / that budget | {statistics.median(ratios):.2f} | {max(ratios):.2f} |")
    print(f"| every page fresh in the store (s) | {statistics.median(stored):.3f} | {max(stored):.3f} |")
    total = [hit for hits in first.values() for hit in hits]
    print("\n| questions | answering page first |\n|---|---|")
    for lang, hits in sorted(first.items()):
        print(f"| {lang} ({len(hits)}) | {sum(hits) / len(hits):.0%} |")
    print(f"| all ({len(total)}) | {sum(total) / len(total):.0%} |")


def slowest_page_budget(urls: list[str], embed: httpx.Client) -> tuple[float, float]:
    """Measured directly: (max over the pages of its fetch + the embedding of its chunks, the slowest fetch +
    the embedding of all the pages' chunks in one request)."""
    worst, slowest_fetch, every_chunk = 0.0, 0.0, []
    with httpx.Client(timeout=30, trust_env=False) as fetch:
        for url in urls:
            started = time.perf_counter()
            response = fetch.get(url)
            fetched = time.perf_counter() - started
            page = extract(response.content, "text/html", "utf-8", url)
            chunks = chunk_text(page.content, 500, 80)
            every_chunk += chunks
            started = time.perf_counter()
            embed.post("/v1/embeddings", json={"input": chunks, "input_type": "document"}).raise_for_status()
            worst = max(worst, fetched + time.perf_counter() - started)
            slowest_fetch = max(slowest_fetch, fetched)
    started = time.perf_counter()
    embed.post("/v1/embeddings", json={"input": every_chunk, "input_type": "document"}).raise_for_status()
    return worst, slowest_fetch + time.perf_counter() - started


if __name__ == "__main__":
    main()

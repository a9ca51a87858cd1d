"""The real websearch process, killed with SIGKILL at random moments of real ingests (one page, a bulk
of three, a re-ingest of a changed page), leaves every page whole or absent.

After each kill, read directly: every chunk row has its Qdrant point, and every point is a chunk's or
a pending one (websearch/pending.py). After each restart, through the API: a page is either found by
keyword (every chunk), by meaning and by ``/page``, or by none of them; a page whose ingest was
answered 2xx is there. At the end, stopped: one point per chunk exactly, nothing pending.

The default run kills it ``LINGXI_CRASH_POINTS`` (8) times; the long run sets it to 60 or more.
"""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import start_service
from tests.websearch.conftest import article

KILL_POINTS = int(os.environ.get("LINGXI_CRASH_POINTS", "8"))
WORDS = (
    "river mountain engine garden window silver market winter harbor candle forest library bridge "
    "violin orchard lantern meadow copper thunder pepper canyon marble falcon velvet glacier anchor "
    "compass saddle island kettle ribbon meteor orchid timber quartz tunnel walnut"
).split()


@dataclass
class Version:
    marker: str  # a made-up word in every paragraph: keyword search finds every chunk by it
    html: str


@dataclass
class Page:
    path: str
    versions: list[Version] = field(default_factory=list)
    acknowledged: bool = False  # an ingest of it was answered 2xx


def page_text(rng: random.Random, marker: str, paragraphs: int = 8) -> list[str]:
    return [" ".join([marker, *(rng.choice(WORDS) for _ in range(70))]).capitalize() + "." for _ in range(paragraphs)]


@dataclass
class Websearch:
    """The websearch process and what it runs on: its own database, its own embedded Qdrant."""

    database_url: str
    qdrant_path: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    base: str = ""

    def start(self) -> None:
        self.process, self.base = start_service("websearch", self.env, ready_timeout_s=120, log=self.log_path)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def websearch_world(local_postgres, embedding_service, page_server) -> Iterator[Websearch]:
    name = f"ws_crash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(local_postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    root = Path(tempfile.mkdtemp(prefix="lingxi-crash-"))
    database_url = local_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    env = {
        **os.environ,
        "WEBSEARCH_DATABASE_URL": database_url,
        "WEBSEARCH_QDRANT_PATH": str(root / "qdrant"),
        "WEBSEARCH_EMBEDDING_URL": embedding_service,
        "WEBSEARCH_ALLOWED_HOSTS": page_server.netloc,
    }
    world = Websearch(database_url, str(root / "qdrant"), env, root / "websearch.log")
    try:
        yield world
    finally:
        world.stop()
        shutil.rmtree(root, ignore_errors=True)


def stored(world: Websearch) -> tuple[dict[int, str], set[int], dict[int, str]]:
    """Read directly (websearch not running): chunk id → url, pending point ids, Qdrant point id → url."""
    from qdrant_client import QdrantClient

    with psycopg.connect(world.database_url, row_factory=dict_row) as conn:
        chunks = {
            row["id"]: row["url"]
            for row in conn.execute("SELECT c.id, p.url FROM chunks c JOIN pages p ON p.id = c.page_id").fetchall()
        }
        pending = {row["point_id"] for row in conn.execute("SELECT point_id FROM pending_points").fetchall()}
        empty = conn.execute("SELECT url FROM pages p WHERE NOT EXISTS (SELECT 1 FROM chunks WHERE page_id = p.id)")
        assert empty.fetchall() == []  # a page row always has its chunks
    client = QdrantClient(path=world.qdrant_path)
    try:
        points: dict[int, str] = {}
        if client.collection_exists("websearch_chunks"):
            offset = None
            while True:
                batch, offset = client.scroll("websearch_chunks", limit=1000, offset=offset, with_payload=True)
                points.update({int(p.id): p.payload["url"] for p in batch})  # type: ignore[index]
                if offset is None:
                    break
    finally:
        client.close()
    return chunks, pending, points


def page_chunks(world: Websearch, url: str) -> list[str]:
    with psycopg.connect(world.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT c.text FROM chunks c JOIN pages p ON p.id = c.page_id WHERE p.url = %s ORDER BY c.chunk_index",
            (url,),
        ).fetchall()
    return [row["text"] for row in rows]


def check_through_the_api(world: Websearch, pages: list[Page], server_url) -> None:
    for page in pages:
        url = server_url(page.path)
        found = httpx.get(f"{world.base}/page", params={"url": url}, timeout=30)
        assert found.status_code in (200, 404), found.text
        if found.status_code == 404:
            assert not page.acknowledged, f"{url} was ingested (2xx) but is gone"
            for version in page.versions:
                hits = httpx.get(f"{world.base}/search/keyword", params={"q": version.marker, "limit": 100}).json()
                assert [h for h in hits if h["url"] == url] == []
            continue
        [version] = [v for v in page.versions if v.marker in found.json()["content"]]
        chunks = page_chunks(world, url)
        hits = httpx.get(f"{world.base}/search/keyword", params={"q": version.marker, "limit": 100}).json()
        assert len([h for h in hits if h["url"] == url]) == len(chunks)  # every chunk, by keyword
        semantic = httpx.get(f"{world.base}/search/semantic", params={"q": chunks[0][:1000], "limit": 3}).json()
        assert semantic[0]["url"] == url and semantic[0]["chunk_index"] == 0  # and by meaning


def wait_for_writes(database_url: str, sender: threading.Thread) -> None:
    """Until the ingest has begun to write (its pending points are committed) or has ended."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        while sender.is_alive() and not conn.execute("SELECT 1 FROM pending_points LIMIT 1").fetchone():
            time.sleep(0.002)


def test_websearch_killed_mid_ingest_leaves_every_page_whole_or_absent(websearch_world, page_server):
    world, rng = websearch_world, random.Random(19)
    pages: dict[str, Page] = {}

    def new_version(path: str) -> str:
        marker = "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
        html = article(f"Report {marker}", page_text(rng, marker))
        pages.setdefault(path, Page(path)).versions.append(Version(marker, html))
        return page_server.html(path, html)

    world.start()
    for warm_up in ("/crash/a", "/crash/b"):  # the second one, warm, tells how long an ingest takes
        started = time.monotonic()
        assert httpx.post(f"{world.base}/ingest", json={"url": new_version(warm_up)}, timeout=60).status_code == 200
        one_ingest_s = time.monotonic() - started
        pages[warm_up].acknowledged = True

    in_writes = left_to_repair = repaired = 0
    for kill_point in range(KILL_POINTS):
        action = ("one", "bulk", "again")[kill_point % 3]
        if action == "again":  # a changed page over one that is there: old version or new, never a mix
            path = rng.choice([p.path for p in pages.values() if p.acknowledged])
            request = {"url": f"{world.base}/ingest", "json": {"url": new_version(path)}}
            touched = [pages[path]]
        elif action == "one":
            request = {"url": f"{world.base}/ingest", "json": {"url": new_version(f"/crash/{kill_point}")}}
            touched = [pages[f"/crash/{kill_point}"]]
        else:
            urls = [new_version(f"/crash/{kill_point}-{k}") for k in range(3)]
            request = {"url": f"{world.base}/bulk_ingest", "json": {"urls": urls}}
            touched = [pages[f"/crash/{kill_point}-{k}"] for k in range(3)]
        answer: dict[str, object] = {}

        def send(request=request, answer=answer) -> None:
            try:
                answer["response"] = httpx.post(**request, timeout=60)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                answer["error"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        if kill_point % 2:  # at any moment of the ingest
            time.sleep(rng.uniform(0, (2.5 if action == "bulk" else 1.2) * one_ingest_s))
        else:  # while it writes: after its first commit, during or after the Qdrant upsert
            wait_for_writes(world.database_url, sender)
            time.sleep(rng.uniform(0, 0.1))
        world.kill()
        sender.join(60)
        response = answer.get("response")
        if isinstance(response, httpx.Response) and response.status_code == 200:
            results = response.json() if action == "bulk" else [{"ok": True}]
            for page, result in zip(touched, results, strict=True):
                page.acknowledged = page.acknowledged or result["ok"]

        chunks, pending, points = stored(world)
        assert set(chunks) <= set(points), "chunk rows without vectors"
        assert set(points) <= set(chunks) | pending, "vectors of no chunk that no ingest will remove"
        assert all(points[i] == url for i, url in chunks.items())
        in_writes += bool(pending)
        left_to_repair += set(points) != set(chunks)

        world.start()
        repaired += world.log_path.read_text().count("repaired the index") - repaired
        check_through_the_api(world, touched, page_server.url)
        for page in pages.values():  # the others: still there, if they were
            found = httpx.get(f"{world.base}/page", params={"url": page_server.url(page.path)}, timeout=30)
            assert found.status_code == 200 or not page.acknowledged

    check_through_the_api(world, list(pages.values()), page_server.url)
    world.stop()
    chunks, pending, points = stored(world)
    assert set(points) == set(chunks) and pending == set()
    print(
        f"\n{KILL_POINTS} kill points over {sum(len(p.versions) for p in pages.values())} page versions "
        f"({len(pages)} urls; one ingest ≈ {one_ingest_s:.2f} s): {in_writes} kills while an ingest wrote, "
        f"{left_to_repair} left points to remove, {repaired} start-ups repaired the index; "
        f"0 pages lost or half-indexed"
    )


def test_start_up_embeds_chunks_without_vectors_again_and_removes_vectors_of_no_chunk(websearch_world, page_server):
    """What the order of writes before this one could leave (a kill between Qdrant's delete of the
    old vectors and the commit): rows without vectors, and vectors without rows."""
    from qdrant_client import QdrantClient, models

    world, rng = websearch_world, random.Random(5)
    marker = "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
    url = page_server.html("/repair", article(f"Report {marker}", page_text(rng, marker)))
    world.start()
    assert httpx.post(f"{world.base}/ingest", json={"url": url}, timeout=60).status_code == 200
    world.stop()
    chunks, _, points = stored(world)
    client = QdrantClient(path=world.qdrant_path)
    try:
        client.delete("websearch_chunks", points_selector=models.PointIdsList(points=list(chunks)))
        size = client.get_collection("websearch_chunks").config.params.vectors.size  # type: ignore[union-attr]
        stray = models.PointStruct(id=10**9, vector=[0.1] * size, payload={"url": "x"})
        client.upsert("websearch_chunks", [stray])
    finally:
        client.close()

    world.start()
    repaired = f"removed 0 points of unfinished ingests and 1 of no chunk; embedded {len(chunks)} chunks again"
    assert repaired in world.log_path.read_text()
    check_through_the_api(world, [Page("/repair", [Version(marker, "")], acknowledged=True)], page_server.url)
    world.stop()
    repaired_chunks, pending, points = stored(world)
    assert repaired_chunks == chunks and set(points) == set(chunks) and pending == set()

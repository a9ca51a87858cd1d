"""Chaos, opt-in (``LINGXI_CHAOS=1``; ``LINGXI_CHAOS_S`` seconds of load, 150 by default): ``lingxi up``
on free ports, real services, SIGKILL at random.

``test_steady_load_survives_random_kills``: steady load on llm, embedding and websearch while one of
them is killed every ~20 s. Every request that got a 2xx did what it said (an ingested page is
searchable at the end), every other one failed clearly (refused, cut by the kill, or a JSON error),
and each killed service was back and ``ok`` soon (the times are printed).

``test_every_service_comes_back_after_sigkill``: all seven services; each killed once; the time from
SIGKILL to its health being what it was, beside the time it took to start the first time.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from services.registry import SERVICES
from tests.conftest import free_port, reply, world_readable_tmpdir
from tests.services.test_supervision import UpRun, start_up

pytestmark = pytest.mark.skipif(not os.environ.get("LINGXI_CHAOS"), reason="chaos runs with LINGXI_CHAOS=1")
LOAD_S = float(os.environ.get("LINGXI_CHAOS_S", "150"))
KILL_EVERY_S = 20.0


@dataclass
class Outcomes:
    counts: Counter[str] = field(default_factory=Counter)
    unclear: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, service: str, kind: str, detail: str = "") -> None:
        with self.lock:
            self.counts[f"{service} {kind}"] += 1
            if kind == "unclear":
                self.unclear.append(f"{service}: {detail}")


def classify(response: httpx.Response | None, error: Exception | None) -> str:
    """ok (2xx), refused, cut (the connection dropped by the kill), error (a JSON error body), unclear."""
    if error is not None:
        return "refused" if isinstance(error, httpx.ConnectError) else "cut"
    assert response is not None
    if response.is_success:
        return "ok"
    try:
        body = response.json()
    except ValueError:
        return "unclear"
    message = body.get("error") or body.get("detail") or body.get("msg")
    return "error" if message and response.status_code != 500 else "unclear"


def post(url: str, body: dict, timeout_s: float) -> tuple[httpx.Response | None, Exception | None]:
    try:
        return httpx.post(url, json=body, timeout=timeout_s), None
    except httpx.TransportError as exc:  # refused, reset, or no answer within the timeout
        return None, exc


def vector_of(response: httpx.Response) -> bool:
    embedding = response.json()["data"][0]["embedding"]
    return bool(embedding) and all(isinstance(x, float) for x in embedding)


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def chaos_suite(local_server) -> Iterator[tuple[UpRun, dict[str, str]]]:
    ports = {name: free_port() for name in ("llm", "embedding", "websearch")}
    env = {f"{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env.update(
        LINGXI_PG_PORT=str(free_port()),
        WEBSEARCH_EMBEDDING_URL=f"http://127.0.0.1:{ports['embedding']}",
        WEBSEARCH_ALLOWED_HOSTS=local_server.netloc,
        WEBSEARCH_QDRANT_PATH=str(world_readable_tmpdir("lingxi-chaos-qdrant-")),
        LLM_MAX_TOKENS="16",
    )
    run = start_up(list(ports), env)
    try:
        run.wait_for("lingxi is up", 600)
        yield run, {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        run.stop()


def test_steady_load_survives_random_kills(chaos_suite, local_server):
    run, bases = chaos_suite
    for base in bases.values():
        deadline = time.monotonic() + 300
        while not healthy(base):
            assert time.monotonic() < deadline, f"{base} never healthy"
            time.sleep(1)
    outcomes, acknowledged = Outcomes(), []
    stop_at = time.monotonic() + LOAD_S

    def llm_load() -> None:
        body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
        while time.monotonic() < stop_at:
            response, error = post(f"{bases['llm']}/api/chat", body, 120)
            kind = classify(response, error)
            if kind == "ok" and not isinstance(response.json().get("content"), str):  # type: ignore[union-attr]
                kind = "unclear"
            outcomes.add("llm", kind, response.text[:200] if response is not None else "")
            time.sleep(0.2 if kind == "ok" else 1)

    def embedding_load() -> None:
        while time.monotonic() < stop_at:
            body = {"input": [f"chaos {uuid.uuid4().hex}"]}
            response, error = post(f"{bases['embedding']}/v1/embeddings", body, 60)
            kind = classify(response, error)
            if kind == "ok" and not vector_of(response):  # type: ignore[arg-type]
                kind = "unclear"
            outcomes.add("embedding", kind, response.text[:200] if response is not None else "")
            time.sleep(0.1 if kind == "ok" else 1)

    def websearch_load() -> None:
        while time.monotonic() < stop_at:
            marker = "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(12))
            path = f"/chaos/{marker}"
            text = f"{marker} " + "tea leaves " * 60
            html = f"<html><head><title>{marker}</title></head><body><p>{text}</p></body></html>"
            local_server.routes[path] = reply(200, html.encode())
            body = {"url": local_server.url(path)}
            response, error = post(f"{bases['websearch']}/ingest", body, 120)
            kind = classify(response, error)
            if kind == "ok":
                acknowledged.append(marker)
            outcomes.add("websearch", kind, response.text[:200] if response is not None else "")
            time.sleep(0.2 if kind == "ok" else 1)

    loads = [threading.Thread(target=load, daemon=True) for load in (llm_load, embedding_load, websearch_load)]
    for load in loads:
        load.start()

    recoveries: list[tuple[str, float]] = []
    victims: list[str] = []
    rng = random.Random(6)
    time.sleep(5)
    while time.monotonic() < stop_at - KILL_EVERY_S:
        if not victims:  # each in turn, in a new order each round: at most two kills of one in 2 minutes
            victims = rng.sample(list(bases), len(bases))
        victim = victims.pop()
        pid = run.state()[victim]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(0.5)
        deadline = killed_at + 300
        while not (run.state()[victim]["pid"] != pid and healthy(bases[victim])):
            assert time.monotonic() < deadline, f"{victim} not back within 300 s"
            time.sleep(0.2)
        recoveries.append((victim, time.monotonic() - killed_at))
        time.sleep(max(0.0, KILL_EVERY_S - (time.monotonic() - killed_at)))
    for load in loads:
        load.join(180)

    for base in bases.values():
        deadline = time.monotonic() + 300
        while not healthy(base):
            assert time.monotonic() < deadline
            time.sleep(1)
    lost = []
    for marker in acknowledged:
        hits = httpx.get(f"{bases['websearch']}/search/keyword", params={"q": marker}, timeout=30).json()
        if not any(marker in hit["title"] for hit in hits):
            lost.append(marker)
    health = run.health()
    print(f"\nchaos: {LOAD_S:.0f} s of load, {len(recoveries)} kills")
    for victim, seconds in recoveries:
        print(f"  {victim:<10} back and ok {seconds:5.1f} s after SIGKILL")
    print(f"  restarts: { {name: row.get('restarts') for name, row in health.items()} }")
    print(f"  requests: {dict(sorted(outcomes.counts.items()))}")
    print(f"  pages acknowledged: {len(acknowledged)}, lost: {len(lost)}; unclear answers: {len(outcomes.unclear)}")
    assert recoveries and lost == [] and outcomes.unclear == []
    assert all(outcomes.counts[f"{name} ok"] > 0 for name in bases)


def service_status(name: str, base: str) -> str:
    try:
        body = httpx.get(f"{base}/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return "down"
    if SERVICES[name].health_body == "envelope":
        return "ok" if body.get("code") == 0 else "error"
    return str(body.get("status"))


def test_every_service_comes_back_after_sigkill():
    ports = {name: free_port() for name in SERVICES}
    env = {f"{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env.update(
        LINGXI_PG_PORT=str(free_port()),
        WEBSEARCH_EMBEDDING_URL=f"http://127.0.0.1:{ports['embedding']}",
        OPRO_LLM_URL=f"http://127.0.0.1:{ports['llm']}/v1",
        OPRO_EMBEDDING_URL=f"http://127.0.0.1:{ports['embedding']}",
        WEBSEARCH_QDRANT_PATH=str(world_readable_tmpdir("lingxi-chaos-qdrant-")),
    )
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    ready = ("ok", "not_configured")  # vlm has no vision model here: not_configured is its steady state
    started = time.monotonic()
    run = start_up(list(SERVICES), env)
    try:
        first_ready: dict[str, float] = {}
        deadline = started + 900
        while len(first_ready) < len(SERVICES):
            assert time.monotonic() < deadline, f"not ready within 900 s: {set(SERVICES) - set(first_ready)}"
            for name in set(SERVICES) - set(first_ready):
                if service_status(name, bases[name]) in ready:
                    first_ready[name] = time.monotonic() - started
            time.sleep(0.3)
        run.wait_for("lingxi is up", 300)
        rows = []
        for name in SERVICES:
            expected = service_status(name, bases[name])
            pid = run.state()[name]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            deadline = killed_at + 600
            while not (run.state()[name]["pid"] != pid and service_status(name, bases[name]) == expected):
                assert time.monotonic() < deadline, f"{name} not back within 600 s"
                time.sleep(0.2)
            rows.append((name, first_ready[name], time.monotonic() - killed_at))
        health = run.health()
    finally:
        run.stop()
    print(f"\n{'service':<10} {'first start → ready':>20} {'SIGKILL → ready':>16} restarts")
    for name, first, back in rows:
        print(f"{name:<10} {first:>18.1f} s {back:>14.1f} s {health[name]['restarts']:>8}")
    assert all(health[name]["restarts"] == 1 for name in SERVICES)

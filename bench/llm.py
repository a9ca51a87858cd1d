"""Benchmark the llm gateway: ``.venv/bin/python bench/llm.py`` (``--skip-litellm``, ``--skip-local``).

One run compares, against a fast local OpenAI-protocol upstream (fixed latency, streamed tokens):
  direct to the upstream  vs  through lingxi llm (openai engine)  vs  through LiteLLM proxy,
then the local engine's tokens/s through the service vs. called in-process.

LiteLLM is a peer, not a dependency: it is looked for in /tmp/litellm-venv (make it with
``python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'``) and
runs offline (LITELLM_LOCAL_MODEL_COST_MAP=True). Every server binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# this file is bench/llm.py: keep its folder off sys.path so ``import llm`` finds the service package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from tests.conftest import free_port, wait_healthy  # noqa: E402

LITELLM = Path(os.environ.get("LITELLM_BIN", "/tmp/litellm-venv/bin/litellm"))
LATENCY_S = 0.002  # the upstream's time to answer (non-stream) or to its first token
TOKEN_GAP_S = 0.002  # between streamed tokens
TOKENS = 16  # chunks per streamed answer
MODEL = "bench-model"
MESSAGES = [{"role": "user", "content": "Say something."}]


# --- the fast upstream (runs in its own process: python bench/llm.py --upstream PORT) -------------
async def upstream_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/models"):
        return await respond(send, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    request = json.loads(body or b"{}")
    base = {"id": "chatcmpl-bench", "created": 1, "model": request.get("model", MODEL)}
    await asyncio.sleep(LATENCY_S)
    if not request.get("stream"):
        message = {"role": "assistant", "content": "tok " * TOKENS}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 3, "completion_tokens": TOKENS, "total_tokens": TOKENS + 3}
        return await respond(send, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(TOKENS):
        if i:
            await asyncio.sleep(TOKEN_GAP_S)
        last = i == TOKENS - 1
        choice = {"index": 0, "delta": {"content": "tok "}, "finish_reason": "stop" if last else None}
        event = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(event)}\n\n".encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def respond(send, body):
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


# --- processes ------------------------------------------------------------------------------------
def start(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    log = tempfile.NamedTemporaryFile(prefix="bench-llm-", suffix=".log", delete=False)
    return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=log)


def start_upstream() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = start([sys.executable, __file__, "--upstream", str(port)])
    wait_healthy(process, f"http://127.0.0.1:{port}/v1/models", timeout_s=300)
    return process, f"http://127.0.0.1:{port}/v1"


def start_lingxi(upstream: str, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """lingxi llm (openai engine) in front of ``upstream``; ``root``: the checkout whose code runs."""
    port = free_port()
    env = {
        "LLM_ENGINE": "openai",
        "LLM_UPSTREAM_URL": upstream,
        "LLM_UPSTREAM_MODEL": MODEL,
        "LLM_LOG_LEVEL": "warning",
        "PYTHONPATH": str(root),
    }
    process = start([sys.executable, "-m", "llm", "--host", "127.0.0.1", "--port", str(port)], env, cwd=root)
    wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=300)
    return process, f"http://127.0.0.1:{port}/v1"


def start_litellm(upstream: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = Path(tempfile.mkdtemp(prefix="bench-litellm-")) / "config.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}\n"
        "      api_key: unused\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        "LITELLM_LOG": "ERROR",
    }
    cmd = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    process = start(cmd, env)
    wait_healthy(process, f"http://127.0.0.1:{port}/health/liveliness", timeout_s=180)
    return process, f"http://127.0.0.1:{port}/v1"


# --- measurements ---------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_stream(client: httpx.AsyncClient, url: str) -> tuple[float, float, int]:
    """(time to first token, total time, chunks) of one streamed answer; raises on any error."""
    started = time.perf_counter()
    first, chunks, done = 0.0, 0, False
    payload = {"model": MODEL, "messages": MESSAGES, "stream": True}
    async with client.stream("POST", f"{url}/chat/completions", json=payload) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            event = json.loads(data)
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                chunks += 1
                first = first or time.perf_counter() - started
    if not done or chunks != TOKENS:
        raise RuntimeError(f"incomplete stream ({chunks} chunks, done={done})")
    return first, time.perf_counter() - started, chunks


def in_turn(targets: dict[str, str], round_number: int) -> list[tuple[str, str]]:
    """The targets, each round starting one further on: none always follows the same one (two lingxi trees
    share the interpreter's code in the CPU's caches, so the second of a pair would run warm)."""
    items = list(targets.items())
    start = round_number % len(items)
    return items[start:] + items[:start]


async def sequential(targets: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    """One request at a time, the targets taking turns (``in_turn``), so background noise hits them alike."""
    payload = {"model": MODEL, "messages": MESSAGES}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    ttfts: dict[str, list[float]] = {name: [] for name in targets}
    totals: dict[str, list[float]] = {name: [] for name in targets}
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(runs + 10):  # the first 10 rounds warm up
            for name, url in in_turn(targets, i):
                started = time.perf_counter()
                response = await client.post(f"{url}/chat/completions", json=payload)
                response.raise_for_status()
                if i >= 10:
                    latencies[name].append(time.perf_counter() - started)
        for i in range(runs // 2 + 5):
            for name, url in in_turn(targets, i):
                first, total, _ = await one_stream(client, url)
                if i >= 5:
                    ttfts[name].append(first)
                    totals[name].append(total)
    return {
        name: {
            "p50": pct(latencies[name], 0.5),
            "p99": pct(latencies[name], 0.99),
            "ttft": statistics.median(ttfts[name]),
            "stream": statistics.median(totals[name]),
        }
        for name in targets
    }


async def concurrent(url: str, streams: int, pid: int, rounds: int = 2) -> dict[str, float]:
    """``streams`` clients at once, ``rounds`` streams each; ``cpu_ms``: process ``pid``'s CPU per stream."""
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        failures: Counter[str] = Counter()  # "ExceptionName: message" -> how often

        async def worker() -> int:
            got = 0
            for _ in range(rounds):
                try:
                    got += (await one_stream(client, url))[2]
                except Exception as exc:
                    failures[f"{type(exc).__name__}: {exc}"[:160]] += 1
            return got

        started, cpu = time.perf_counter(), cpu_s(pid)
        chunks = sum(await asyncio.gather(*(worker() for _ in range(streams))))
        elapsed, cpu = time.perf_counter() - started, cpu_s(pid) - cpu
    errors = sum(failures.values())
    return {
        "streams_per_s": (streams * rounds - errors) / elapsed,
        "chunks_per_s": chunks / elapsed,
        "errors": errors,
        "failures": failures,
        "cpu_ms": 1000 * cpu / (streams * rounds),
    }


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleaved(targets: dict[str, str], pids: dict[str, int], streams: int, passes: int = 3) -> dict[str, dict]:
    """``passes`` rounds of ``streams`` concurrent streams, the targets taking turns; the median pass of each."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(passes):
        for name, url in targets.items():
            runs[name].append(asyncio.run(concurrent(url, streams, pids[name])))
    medians = {name: sorted(rows, key=lambda row: row["streams_per_s"])[len(rows) // 2] for name, rows in runs.items()}
    return {
        name: {
            **medians[name],
            "errors": sum(row["errors"] for row in runs[name]),
            "failures": sum((row["failures"] for row in runs[name]), Counter()),
        }
        for name in runs
    }


async def local_tokens_per_s(runs: int = 5) -> tuple[float, float]:
    """Tokens/s of the local engine through the service (HTTP) and in-process, runs interleaved."""
    from llm.config import Engine, ModelRoute, Settings
    from llm.engines.base import ChatRequest
    from llm.engines.local import LocalEngine

    prompt = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    port = free_port()
    env = {"LLM_ENGINE": "local", "LLM_THREADS": "1", "LLM_MAX_TOKENS": "64", "LLM_LOG_LEVEL": "warning"}
    env["LLM_EMBEDDED_MODEL"] = SMOL
    process = start([sys.executable, "-m", "llm", "--host", "127.0.0.1", "--port", str(port)], env)
    engine = LocalEngine(ModelRoute("local", Engine.local, SMOL), Settings(threads=1, max_tokens=64))
    service, inproc = [], []
    try:
        await engine.start()
        wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=300)
        async with httpx.AsyncClient(timeout=300) as client:
            for _ in range(runs + 1):  # the first of each is a warm-up
                started = time.perf_counter()
                body = await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"messages": prompt})
                service.append(body.json()["usage"]["completion_tokens"] / (time.perf_counter() - started))
                started = time.perf_counter()
                answer = await engine.complete(ChatRequest("local", prompt))
                inproc.append(answer["usage"]["completion_tokens"] / (time.perf_counter() - started))
    finally:
        process.terminate()
        process.wait()
        await engine.aclose()
    return statistics.median(service[1:]), statistics.median(inproc[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=200, help="sequential non-stream requests per target")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument(
        "--baseline", type=Path, help="another lingxi checkout (e.g. `git worktree add /tmp/base main`), measured too"
    )
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--only-local", action="store_true")
    parser.add_argument("--only-local-engines", action="store_true", help="llamacpp vs its peer vs transformers")
    args = parser.parse_args()
    if args.upstream:
        import uvicorn

        uvicorn.run(upstream_app, host="127.0.0.1", port=args.upstream, log_level="warning", access_log=False)
        return

    if args.only_local:
        local_report()
        return
    if args.only_local_engines:
        local_engines_report()
        return
    processes = []
    try:
        upstream, upstream_url = start_upstream()
        processes.append(upstream)
        targets = {"direct": upstream_url}
        lingxi, targets["lingxi"] = start_lingxi(upstream_url)
        processes.append(lingxi)
        pids = {"direct": upstream.pid, "lingxi": lingxi.pid}
        if args.baseline:
            baseline, targets["baseline"] = start_lingxi(upstream_url, args.baseline.resolve())
            processes.append(baseline)
            pids["baseline"] = baseline.pid
        if not args.skip_litellm and LITELLM.exists():
            litellm, targets["litellm"] = start_litellm(upstream_url)
            processes.append(litellm)
            pids["litellm"] = litellm.pid
        load_before = os.getloadavg()
        print(f"measuring one request at a time: {', '.join(targets)} ...", file=sys.stderr)
        results = asyncio.run(sequential(targets, args.runs))
        for streams in (64, 256):
            print(f"measuring {', '.join(targets)} under {streams} concurrent streams, in turns ...", file=sys.stderr)
            for name, row in interleaved(targets, pids, streams).items():
                results[name][f"c{streams}"] = row
        load_after = os.getloadavg()
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    report(results)
    print(
        f"load average (1, 5, 15 min): {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f} before, "
        f"{load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f} after"
    )
    if not args.skip_local:
        local_report()
        local_engines_report()


def local_report() -> None:
    service, inproc = asyncio.run(local_tokens_per_s())
    print(
        f"\nlocal engine (SmolLM2-135M, 1 thread, up to 64 tokens): service {service:.1f} tok/s, "
        f"in-process {inproc:.1f} tok/s, service / in-process = {service / inproc:.2f}x"
    )


# --- local engines: lingxi's llamacpp and transformers engines vs llama-cpp-python's own server ------
LLAMACPP_PEER = Path(os.environ.get("LLAMACPP_PEER_PYTHON", "/tmp/llamacpp-venv/bin/python"))
SMOL = "smollm2:135m"
COUNT = [{"role": "user", "content": "Count from 1 to 200, separated by commas."}]
NUMBERS = {
    "type": "object",
    "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}},
    "required": ["numbers"],
}
GEN_TOKENS = 128
LOCAL_THREADS = "1"  # on this shared 2-core box 2 llama.cpp threads ran 3-10x slower than 1 (docs/benchmarks.md)


def start_lingxi_engine(engine: str) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {
        "LLM_ENGINE": engine,
        "LLM_THREADS": LOCAL_THREADS,
        "LLM_MAX_TOKENS": "256",
        "LLM_MAX_INPUT_TOKENS": "2048",
        "LLM_LOCAL_PARALLEL": "8",
        "LLM_LOG_LEVEL": "warning",
        "LLM_EMBEDDED_MODEL": SMOL,
    }
    started = time.perf_counter()
    process = start([sys.executable, "-m", "llm", "--host", "127.0.0.1", "--port", str(port)], env)
    wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=300)
    return process, f"http://127.0.0.1:{port}/v1", time.perf_counter() - started


def start_llamacpp_peer() -> tuple[subprocess.Popen, str, float]:
    from llm.config import Settings
    from llm.embedded import SMOLLM2

    path = SMOLLM2.path(Settings().model_cache_dir)
    port = free_port()
    cmd = [str(LLAMACPP_PEER), "-m", "llama_cpp.server", "--model", str(path)]
    cmd += ["--model_alias", SMOL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    cmd += ["--n_threads", LOCAL_THREADS, "--n_threads_batch", LOCAL_THREADS, "--verbose", "False"]
    started = time.perf_counter()
    process = start(cmd)
    wait_healthy(process, f"http://127.0.0.1:{port}/v1/models", timeout_s=120)
    return process, f"http://127.0.0.1:{port}/v1", time.perf_counter() - started


async def generate(client: httpx.AsyncClient, url: str, **extra) -> tuple[float, dict]:
    payload = {"model": SMOL, "messages": COUNT, "max_tokens": GEN_TOKENS, "temperature": 0, **extra}
    started = time.perf_counter()
    response = await client.post(f"{url}/chat/completions", json=payload)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()


async def first_token_s(client: httpx.AsyncClient, url: str) -> float:
    payload = {"model": SMOL, "messages": COUNT, "max_tokens": 16, "temperature": 0, "stream": True}
    started = time.perf_counter()
    async with client.stream("POST", f"{url}/chat/completions", json=payload) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                delta = (json.loads(line[5:])["choices"] or [{}])[0].get("delta") or {}
                if delta.get("content"):
                    return time.perf_counter() - started
    raise RuntimeError("the stream had no content")


async def speed(url: str, runs: int = 3, **extra) -> dict[str, float]:
    """Tokens/s of one stream (median of ``runs``), of 8 streams at once (aggregate), and the median TTFT."""
    async with httpx.AsyncClient(timeout=600) as client:
        await generate(client, url, **extra)  # warm-up
        single = []
        for _ in range(runs):
            elapsed, body = await generate(client, url, **extra)
            single.append(body["usage"]["completion_tokens"] / elapsed)
        ttft = statistics.median([await first_token_s(client, url) for _ in range(runs)])
        started = time.perf_counter()
        answers = await asyncio.gather(*(generate(client, url, **extra) for _ in range(8)))
        elapsed = time.perf_counter() - started
    tokens = sum(body["usage"]["completion_tokens"] for _, body in answers)
    return {"single": statistics.median(single), "c8": tokens / elapsed, "ttft": ttft}


async def schema_validity(url: str, peer: bool = False) -> dict[str, int]:
    """Each bench schema asked once plain and once streamed: how many ended by themselves, and how many validate."""
    import jsonschema

    from bench.llm_cases import SCHEMAS

    counts = {"asked": 0, "ended": 0, "valid": 0, "cut": 0, "errors": 0}
    async with httpx.AsyncClient(timeout=600) as client:
        for prompt, schema in SCHEMAS:
            if peer:  # llama-cpp-python's server takes a schema inside json_object
                response_format = {"type": "json_object", "schema": schema}
            else:
                response_format = {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": schema, "strict": True},
                }
            for stream in (False, True):
                counts["asked"] += 1
                payload = {
                    "model": SMOL,
                    "messages": [{"role": "user", "content": f"{prompt} Answer in JSON."}],
                    "max_tokens": 256,
                    "temperature": 0,
                    "response_format": response_format,
                    "stream": stream,
                }
                try:
                    text, finish = await answer_text(client, url, payload)
                except (httpx.HTTPError, RuntimeError, ValueError):
                    counts["errors"] += 1
                    continue
                if finish == "length":
                    counts["cut"] += 1
                    continue
                counts["ended"] += 1
                try:
                    jsonschema.validate(json.loads(text), schema)
                    counts["valid"] += 1
                except (ValueError, jsonschema.ValidationError):
                    print(f"  invalid for {prompt!r}: {text[:120]!r}", file=sys.stderr)
    return counts


async def answer_text(client: httpx.AsyncClient, url: str, payload: dict) -> tuple[str, str]:
    if not payload.get("stream"):
        response = await client.post(f"{url}/chat/completions", json=payload)
        if response.status_code != 200:
            raise RuntimeError(response.text)
        choice = response.json()["choices"][0]
        return choice["message"]["content"] or "", choice["finish_reason"]
    parts, finish = [], ""
    async with client.stream("POST", f"{url}/chat/completions", json=payload) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                choice = (json.loads(line[5:])["choices"] or [{}])[0]
                parts.append((choice.get("delta") or {}).get("content") or "")
                finish = choice.get("finish_reason") or finish
    return "".join(parts), finish


async def tool_validity(url: str) -> dict[str, int]:
    """Each bench tool case (all must call) plain and streamed: calls that parse and whose arguments validate."""
    import jsonschema

    from bench.llm_cases import TOOL_CASES

    counts = {"asked": 0, "valid": 0, "finish_tool_calls": 0}
    async with httpx.AsyncClient(timeout=600) as client:
        for prompt, tools, choice in TOOL_CASES:
            allowed = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
            if isinstance(choice, dict):
                allowed = {choice["function"]["name"]: allowed[choice["function"]["name"]]}
            for stream in (False, True):
                counts["asked"] += 1
                payload = {
                    "model": SMOL,
                    "messages": [{"role": "user", "content": prompt}],
                    "tools": tools,
                    "tool_choice": choice,
                    "max_tokens": 256,
                    "temperature": 0,
                    "stream": stream,
                }
                calls, finish = await answer_calls(client, url, payload)
                counts["finish_tool_calls"] += finish == "tool_calls"
                try:
                    (call,) = calls
                    jsonschema.validate(json.loads(call["function"]["arguments"]), allowed[call["function"]["name"]])
                    counts["valid"] += 1
                except (ValueError, KeyError, jsonschema.ValidationError) as exc:
                    print(f"  no valid call for {prompt!r}: {calls} ({exc})", file=sys.stderr)
    return counts


async def answer_calls(client: httpx.AsyncClient, url: str, payload: dict) -> tuple[list[dict], str]:
    if not payload.get("stream"):
        response = await client.post(f"{url}/chat/completions", json=payload)
        choice = response.json()["choices"][0]
        return choice["message"].get("tool_calls") or [], choice["finish_reason"]
    from llm.openai_format import merge_tool_calls

    calls: dict[int, dict] = {}
    finish = ""
    async with client.stream("POST", f"{url}/chat/completions", json=payload) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                chunk = json.loads(line[5:])
                merge_tool_calls(calls, chunk)
                finish = (chunk["choices"] or [{}])[0].get("finish_reason") or finish
    return list(calls.values()), finish


def local_engines_report() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "numbers", "schema": NUMBERS, "strict": True}}
    rows: dict[str, dict] = {}
    extra: dict[str, object] = {}
    targets = [("lingxi llamacpp", lambda: start_lingxi_engine("llamacpp"))]
    if LLAMACPP_PEER.exists():
        targets.append(("llama-cpp-python server", start_llamacpp_peer))
    targets.append(("lingxi local (transformers)", lambda: start_lingxi_engine("local")))
    for name, launch in targets:
        print(f"measuring {name} ...", file=sys.stderr)
        process, url, load_s = launch()
        try:
            rows[name] = {"load": load_s, **asyncio.run(speed(url))}
            if name == "lingxi llamacpp":
                rows["lingxi llamacpp, json_schema"] = {
                    "load": load_s,
                    **asyncio.run(speed(url, response_format=schema)),
                }
                extra["schemas"] = asyncio.run(schema_validity(url))
                extra["tools"] = asyncio.run(tool_validity(url))
            if name == "llama-cpp-python server":
                peer_format = {"type": "json_object", "schema": NUMBERS}
                rows[f"{name}, json schema"] = {"load": load_s, **asyncio.run(speed(url, response_format=peer_format))}
                extra["peer_schemas"] = asyncio.run(schema_validity(url, peer=True))
        finally:
            process.terminate()
            process.wait()
    print(f"\nlocal engines (SmolLM2-135M Q4_1, {LOCAL_THREADS} threads, greedy, {GEN_TOKENS} tokens)")
    print("| engine | time to healthy s | single stream tok/s | 8 streams aggregate tok/s | 8 / single | TTFT ms |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['load']:.1f} | {r['single']:.1f} | {r['c8']:.1f} | {r['c8'] / r['single']:.2f}x "
            f"| {r['ttft'] * 1000:.0f} |"
        )
    ours, peer = rows["lingxi llamacpp"], rows.get("llama-cpp-python server")
    if peer:
        print(f"\nsingle stream lingxi llamacpp / llama-cpp-python server = {ours['single'] / peer['single']:.2f}x")
        print(f"8 streams lingxi llamacpp / llama-cpp-python server = {ours['c8'] / peer['c8']:.2f}x")
    constrained = rows["lingxi llamacpp, json_schema"]
    single, c8 = constrained["single"] / ours["single"], constrained["c8"] / ours["c8"]
    print(f"constrained / free tokens/s: single {single:.2f}x, 8 streams {c8:.2f}x")
    for key, counts in extra.items():
        print(f"{key}: {counts}")


def report(results: dict[str, dict]) -> None:
    direct = results["direct"]
    ms = 1000
    print(f"\nupstream: {LATENCY_S * ms:.0f} ms latency, {TOKENS} streamed chunks {TOKEN_GAP_S * ms:.0f} ms apart")
    print("(CPU ms per stream: of the target's own process; for direct, the upstream's)")
    print(
        "| target | p50 ms | p99 ms | added p50 ms | added p99 ms | TTFT ms | per-chunk overhead ms "
        "| c64 streams/s | c64 / direct | c64 CPU ms per stream | c64 errors "
        "| c256 streams/s | c256 / direct | c256 CPU ms per stream | c256 errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        per_chunk = (r["stream"] - direct["stream"]) / TOKENS
        row = (
            f"| {name} | {r['p50'] * ms:.2f} | {r['p99'] * ms:.2f} | {(r['p50'] - direct['p50']) * ms:.2f} "
            f"| {(r['p99'] - direct['p99']) * ms:.2f} | {r['ttft'] * ms:.2f} | {per_chunk * ms:.3f} "
        )
        for streams in (64, 256):
            c, d = r[f"c{streams}"], direct[f"c{streams}"]
            row += (
                f"| {c['streams_per_s']:.0f} | {c['streams_per_s'] / d['streams_per_s']:.2f} | {c['cpu_ms']:.2f} "
                f"| {c['errors']} "
            )
        print(row + "|")
    if "litellm" in results:
        theirs = results["litellm"]["p50"] - direct["p50"]
        for name in ("lingxi", "baseline"):
            if name in results:
                ours = results[name]["p50"] - direct["p50"]
                print(f"\n{name} added p50 / LiteLLM added p50 = {ours / theirs:.2f}")
                for streams in (64, 256):
                    ratio = (
                        results[name][f"c{streams}"]["streams_per_s"]
                        / results["litellm"][f"c{streams}"]["streams_per_s"]
                    )
                    print(f"c{streams} throughput {name} / LiteLLM = {ratio:.2f}x")
    for name, r in results.items():
        for streams in (64, 256):
            for failure, count in r[f"c{streams}"]["failures"].most_common():
                print(f"{name} c{streams} failed {count}x: {failure}")
    for streams in (64, 256):
        ratio = results["lingxi"][f"c{streams}"]["streams_per_s"] / direct[f"c{streams}"]["streams_per_s"]
        print(f"c{streams} throughput lingxi / direct = {ratio:.2f}x")


if __name__ == "__main__":
    main()

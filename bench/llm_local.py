"""Benchmark the local engine against llama.cpp's own server: ``.venv/bin/python bench/llm_local.py``.

One run, one GGUF (the embedded Qwen2.5-Coder-0.5B-Instruct Q4_K_M), greedy, 128 tokens, OpenAI chat API:
  lingxi llm (threads chosen per step)  vs  lingxi llm with LLM_THREADS=1  vs  llama-server -t 1|2 -np 8
  vs the engine called in-process (the ceiling, same thread policy as the service),
on a quiet machine and with a CPU hog (a Python busy loop the bench starts) on one core beside it:
single-stream tok/s, 8 concurrent streams' aggregate tok/s, time to first token of a short Chinese
prompt. Targets are measured in turn, pass after pass, so a load that comes and goes on a shared box
touches all of them; medians are printed with ratios to llama-server's best thread setting.
Then the tool-call decisions of ``bench/llm_tool_cases.py`` on lingxi (greedy, then default sampling).

The peer is a llama-server binary built from the llama.cpp sources of the installed llama-cpp-python
(the engine inside Ollama): set LLAMA_SERVER=path; without it only lingxi is measured. It gets
``cache_prompt: false`` so that both sides read every prompt. Every server binds 127.0.0.1.
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
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.llm_tool_cases import CASES, TOOLS  # noqa: E402
from tests.conftest import free_port, wait_healthy  # noqa: E402

LLAMA_SERVER = os.environ.get("LLAMA_SERVER", "")
MODEL = "qwen2.5-coder:0.5b"
GEN_TOKENS = 128
LONG = [{"role": "user", "content": "Write a Python class for a binary search tree with insert, delete and search."}]
SHORT = [{"role": "user", "content": "你好，请介绍一下你自己。"}]
PEERS = {"llama-server -t 1 -np 8": ["-t", "1"], "llama-server -t 2 -np 8": ["-t", "2"]}


# --- the targets ----------------------------------------------------------------------------------
class Target:
    """An OpenAI chat endpoint (``url``), or the engine in this process (``engine``)."""

    def __init__(self, url: str = "", extra: dict | None = None, engine=None, process=None) -> None:
        self.url, self.extra, self.engine, self.process = url, extra or {}, engine, process
        self.client = httpx.AsyncClient(timeout=600)

    def payload(self, messages: list[dict], **params) -> dict:
        return {"model": MODEL, "messages": messages, **params, **self.extra}

    async def tokens(self, messages: list[dict], **params) -> int:
        """Generates a whole answer; returns its completion tokens."""
        payload = self.payload(messages, **params)
        if self.engine is not None:
            from llm.engines.base import ChatRequest

            body = await self.engine.complete(ChatRequest(MODEL, messages, payload))
        else:
            response = await self.client.post(f"{self.url}/chat/completions", json=payload)
            response.raise_for_status()
            body = response.json()
        return int(body["usage"]["completion_tokens"])

    async def first_token_s(self, messages: list[dict]) -> float:
        payload = self.payload(messages, max_tokens=16, temperature=0, stream=True)
        started = time.perf_counter()
        if self.engine is not None:
            from llm.engines.base import ChatRequest

            chunks = await self.engine.open_stream(ChatRequest(MODEL, messages, payload))
            async for chunk in chunks:
                if (chunk["choices"][0].get("delta") or {}).get("content"):
                    elapsed = time.perf_counter() - started
                    await chunks.aclose()
                    return elapsed
            raise RuntimeError("the stream had no content")
        async with self.client.stream("POST", f"{self.url}/chat/completions", json=payload) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    delta = (json.loads(line[5:])["choices"] or [{}])[0].get("delta") or {}
                    if delta.get("content"):
                        return time.perf_counter() - started
        raise RuntimeError("the stream had no content")

    async def close(self) -> None:
        await self.client.aclose()
        if self.engine is not None:
            await self.engine.aclose()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    log = tempfile.NamedTemporaryFile(prefix="bench-llm-local-", suffix=".log", delete=False)
    own = {name: value for name, value in os.environ.items() if not name.startswith("LLM_")}  # only ours
    return subprocess.Popen(cmd, cwd=ROOT, env={**own, **(env or {})}, stdout=log, stderr=log)


def lingxi(cache_dir: Path, threads: str | None) -> Target:
    port = free_port()
    env = {"LLM_ENGINE": "llamacpp", "LLM_LOG_LEVEL": "warning", "LLM_MODEL_CACHE_DIR": str(cache_dir)}
    env["LLM_EMBEDDED_MODEL"], env["LLM_LOCAL_PARALLEL"] = MODEL, "8"
    if threads:
        env["LLM_THREADS"] = threads
    process = start([sys.executable, "-m", "llm", "--host", "127.0.0.1", "--port", str(port)], env)
    wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=300)
    return Target(f"http://127.0.0.1:{port}/v1", process=process)


def llama_server(gguf: Path, threads: list[str]) -> Target:
    port = free_port()
    cmd = [LLAMA_SERVER, "-m", str(gguf), *threads, "-np", "8", "--host", "127.0.0.1", "--port", str(port)]
    process = start([*cmd, "--no-webui"])
    wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=300)
    return Target(f"http://127.0.0.1:{port}/v1", extra={"cache_prompt": False}, process=process)


async def in_process(cache_dir: Path) -> Target:
    from llm.config import ModelRoute, Settings
    from llm.engines.llamacpp import LlamaCppEngine

    settings = Settings(model_cache_dir=cache_dir, local_parallel=8, embedded_model=MODEL, threads=None)
    engine = LlamaCppEngine(ModelRoute(MODEL, settings.engine, MODEL), settings)
    await engine.start()
    return Target(engine=engine)


# --- measurements ---------------------------------------------------------------------------------
async def measure(target: Target) -> dict[str, float]:
    """One pass: a single stream's tok/s, 8 concurrent streams' aggregate tok/s, TTFT (median of 3)."""
    greedy = {"max_tokens": GEN_TOKENS, "temperature": 0}
    started = time.perf_counter()
    tokens = await target.tokens(LONG, **greedy)
    single = tokens / (time.perf_counter() - started)
    started = time.perf_counter()
    counts = await asyncio.gather(*(target.tokens(LONG, **greedy) for _ in range(8)))
    c8 = sum(counts) / (time.perf_counter() - started)
    ttft = statistics.median([await target.first_token_s(SHORT) for _ in range(3)])
    return {"single": single, "c8": c8, "ttft": ttft, "tokens": tokens}


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def speeds(targets: dict[str, Target], passes: int, situation: str) -> dict[str, dict[str, float]]:
    seen: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for target in targets.values():
        await target.tokens(LONG, max_tokens=16, temperature=0)  # warm-up
    names = list(targets)
    for number in range(passes):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            seen[name].append(await measure(targets[name]))
            print(f"  {situation} pass {number + 1} {name}: {seen[name][-1]} (load {loadavg():.1f})", file=sys.stderr)
    return {name: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for name, runs in seen.items()}


def table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    for situation, rows in results.items():
        peers = [rows[name] for name in PEERS if name in rows]
        best_single = max((row["single"] for row in peers), default=0.0)
        best_c8 = max((row["c8"] for row in peers), default=0.0)
        print(f"\n{situation}")
        print("| target | single tok/s | 8 streams tok/s | TTFT s | single / peer best | 8 streams / peer best |")
        print("|---|---|---|---|---|---|")
        for name, row in rows.items():
            ratio_1 = f"{row['single'] / best_single:.2f} ×" if best_single else "—"
            ratio_8 = f"{row['c8'] / best_c8:.2f} ×" if best_c8 else "—"
            line = f"| {name} | {row['single']:.1f} | {row['c8']:.1f} | {row['ttft']:.2f} | {ratio_1} | {ratio_8} |"
            print(line)


# --- tool-call decisions --------------------------------------------------------------------------
async def decisions(target: Target, **sampling) -> dict[str, int]:
    import jsonschema

    schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
    names = ["needed", "called", "unneeded", "quiet", "plain", "right_tool", "args_valid", "args_as_asked"]
    counts = dict.fromkeys(names, 0)
    for case in CASES:
        # the decision is in the first tokens; 160 hold the longest call (an email)
        payload = target.payload([{"role": "user", "content": case.prompt}], tools=TOOLS, tool_choice="auto")
        payload["max_tokens"] = 160
        response = await target.client.post(f"{target.url}/chat/completions", json={**payload, **sampling})
        response.raise_for_status()
        message = response.json()["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        if case.tool is None:
            counts["unneeded"] += 1
            counts["quiet"] += not calls
            text = (message.get("content") or "").lstrip("`json \n")
            counts["plain"] += not calls and not (text.startswith("{") and '"name"' in text[:40])  # no call as text
        else:
            counts["needed"] += 1
            counts["called"] += bool(calls)
        names = [call["function"]["name"] for call in calls]
        if case.tool is not None and case.tool in names:
            counts["right_tool"] += 1
            arguments = calls[names.index(case.tool)]["function"]["arguments"]
            try:
                arguments = json.loads(arguments)
                jsonschema.validate(arguments, schemas[case.tool])
                counts["args_valid"] += 1
                found = all(
                    any(part.lower() in str(arguments.get(key, "")).lower() for part in hint.split("|"))
                    for key, hint in case.hints.items()
                )
                counts["args_as_asked"] += found
            except (ValueError, jsonschema.ValidationError):
                pass
        shown = calls and [(c["function"]["name"], c["function"]["arguments"]) for c in calls]
        print(f"  {case.prompt[:40]!r} -> {shown or (message.get('content') or '')[:60]!r}", file=sys.stderr)
    return counts


def decision_line(label: str, c: dict[str, int]) -> str:
    return (
        f"| {label} | {c['called']}/{c['needed']} | {c['quiet']}/{c['unneeded']} ({c['plain']} plain text) "
        f"| {c['right_tool']}/{c['needed']} "
        f"| {c['args_valid']}/{c['right_tool']} | {c['args_as_asked']}/{c['right_tool']} |"
    )


# --- the run --------------------------------------------------------------------------------------
def hog() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


async def run(args: argparse.Namespace, cache_dir: Path, gguf: Path) -> None:
    starters: dict[str, Callable[[], Awaitable[Target] | Target]] = {
        "lingxi llm (threads per step)": lambda: lingxi(cache_dir, None),
        "lingxi llm LLM_THREADS=1": lambda: lingxi(cache_dir, "1"),
    }
    if args.skip_speed:
        del starters["lingxi llm LLM_THREADS=1"]
    if LLAMA_SERVER and not args.skip_speed:
        for name, threads in PEERS.items():
            starters[name] = lambda threads=threads: llama_server(gguf, threads)
    else:
        print("LLAMA_SERVER is not set: no peer", file=sys.stderr)
    if not args.skip_in_process and not args.skip_speed:
        starters["engine in-process (ceiling)"] = lambda: in_process(cache_dir)
    targets: dict[str, Target] = {}
    busy: subprocess.Popen | None = None
    try:
        for name, starter in starters.items():
            made = starter()
            targets[name] = await made if asyncio.iscoroutine(made) else made  # type: ignore[assignment]
        results, loads = {}, {}
        situations = (
            [] if args.skip_speed else ["quiet machine", "one core taken by a CPU hog"][: 1 if args.skip_hog else 2]
        )
        for situation in situations:
            if situation != "quiet machine":
                busy = hog()
                await asyncio.sleep(2)  # the thread chooser looks every 0.5 s
            load_before = loadavg()
            results[situation] = await speeds(targets, args.passes, situation)
            loads[situation] = (load_before, loadavg())
            if busy is not None:
                busy.kill()
                busy.wait()
                busy = None
        if results:
            table(results)
        for situation, (before, after) in loads.items():
            print(f"load average (1 min) {situation}: {before:.1f} at the start, {after:.1f} at the end")
        if not args.skip_tools:
            service = targets["lingxi llm (threads per step)"]
            print("\n| sampling | calls when needed | no call when not | right tool | arguments valid | as asked |")
            print("|---|---|---|---|---|---|")
            print(decision_line("temperature 0", await decisions(service, temperature=0)))
            print(decision_line("default (model's recommended)", await decisions(service)))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        for target in targets.values():
            await target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3, help="measurements of each target per situation")
    parser.add_argument("--skip-hog", action="store_true")
    parser.add_argument("--skip-tools", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="only the tool-call decisions")
    parser.add_argument("--skip-in-process", action="store_true")
    from llm.config import Settings
    from llm.embedded import QWEN_CODER

    cache_dir = Path(Settings().model_cache_dir).resolve()
    asyncio.run(run(parser.parse_args(), cache_dir, QWEN_CODER.path(cache_dir)))


if __name__ == "__main__":
    main()

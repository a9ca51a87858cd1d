"""asr benchmark: the service vs the same engine in-process, 4 concurrent uploads, first partials.

    .venv/bin/python bench/asr.py          # everything
    .venv/bin/python bench/asr.py --live   # WS /asr/ws only: first message per phrase (12), final WER
    .venv/bin/python bench/asr.py --live /work/main . --runs 3   # the same, two trees' code interleaved

Speech is made here with espeak-ng (English sentences with pauses). The service runs as its own
process (``lingxi serve asr``) on 127.0.0.1 with the embedded Whisper base; the in-process ceiling
runs the same pipeline (decode → VAD → pieces → engine) without HTTP, on the same files.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.config import Settings  # noqa: E402
from asr.engines.whisper import WhisperEngine  # noqa: E402
from asr.pipeline import Transcriber  # noqa: E402
from services.media import decode_audio  # noqa: E402
from tests.asr.speech import speak  # noqa: E402
from tests.conftest import running_service, start_service, stop_process  # noqa: E402

TEXTS = [
    "The weather is nice today. We will walk to the park after lunch. My brother likes to read books.",
    "I would like a cup of tea. Thank you very much. The train leaves at seven in the morning.",
    "Please send me the report by Friday. The meeting has been moved to the large room upstairs.",
]
REPEATS = 5


def make_files(directory: Path) -> list[bytes]:
    return [speak(text, directory / f"speech{i}.wav").read_bytes() for i, text in enumerate(TEXTS)]


def seconds_of(data: bytes) -> float:
    return decode_audio(data).size / 16_000


class InProcess:
    """The ceiling: the same pipeline (decode → VAD → pieces → engine) called without HTTP."""

    def __init__(self, settings: Settings) -> None:
        engine = WhisperEngine(settings)
        asyncio.run(engine.start())
        self.transcriber = Transcriber(engine, settings, "whisper")

    def run(self, files: list[bytes]) -> float:
        async def run_all() -> None:
            for data in files:
                await self.transcriber.transcribe(await self.transcriber.decode(data))

        started = time.perf_counter()
        asyncio.run(run_all())
        return time.perf_counter() - started


def service_env(cache: Path) -> dict[str, str]:
    return {"ASR_MODEL_CACHE_DIR": str(cache), "ASR_LOG_LEVEL": "warning"}


def post(client: httpx.Client, url: str, data: bytes) -> dict:
    response = client.post(f"{url}/asr", files={"file": ("a.wav", data)}, timeout=300)
    response.raise_for_status()
    return response.json()


def service_run(client: httpx.Client, url: str, files: list[bytes]) -> float:
    started = time.perf_counter()
    for data in files:
        post(client, url, data)
    return time.perf_counter() - started


async def service_concurrent(url: str, files: list[bytes], clients: int = 4) -> float:
    """Seconds for ``clients`` concurrent uploaders to send every file once each."""
    async with httpx.AsyncClient(trust_env=False, timeout=600) as client:

        async def uploader() -> None:
            for data in files:
                response = await client.post(f"{url}/asr", files={"file": ("a.wav", data)})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(uploader() for _ in range(clients)))
        return time.perf_counter() - started


def first_stream_line(url: str, data: bytes) -> tuple[float, float, int]:
    """/asr/stream: seconds to the first partial line, to the last line, and the number of lines."""
    started = time.perf_counter()
    first = None
    lines = 0
    with httpx.stream("POST", f"{url}/asr/stream", files={"file": ("a.wav", data)}, timeout=300) as response:
        for line in response.iter_lines():
            if line.strip():
                lines += 1
                first = first or time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started, lines


async def live_first_partial(url: str, data: bytes, first_phrase_end: float) -> float:
    """WS /asr/ws at real-time pace: seconds from the end of the first phrase to its first draft or partial."""
    pcm = (np.clip(decode_audio(data), -1, 1) * 32767).astype("<i2").tobytes()
    frame = 3200  # 100 ms
    started = time.perf_counter()
    arrived: list[float] = []
    async with websockets.connect(url.replace("http", "ws") + "/asr/ws") as socket:

        async def sender() -> None:
            for index, offset in enumerate(range(0, len(pcm), frame)):
                await socket.send(pcm[offset : offset + frame])
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.1 - time.perf_counter()))
            await socket.send(json.dumps({"event": "end"}))

        async def receiver() -> None:
            async for message in socket:
                if json.loads(message)["type"] in ("draft", "partial"):
                    arrived.append(time.perf_counter() - started)

        await asyncio.gather(sender(), receiver())
    return arrived[0] - first_phrase_end if arrived else float("nan")


LIVE_TEXT = (
    "The weather is nice today. We will walk to the park after lunch. My brother likes to read books. "
    "I would like a cup of tea. Thank you very much. The train leaves at seven in the morning. "
    "Please send me the report by Friday. The meeting has been moved upstairs. We should finish the project soon. "
    "Coffee please, with a little milk. See you later then. Good night and sleep well."
)


@dataclass
class LiveRun:
    first: list[float]  # per phrase: seconds from its end to its first message (a draft, else its partial)
    stable: list[float]  # per partial (the full pass's text): seconds from the end of its stretch
    final: str
    final_after_end: float  # seconds from the end event to the final message
    load: float  # 1-minute load average when the run ended


async def live_latencies(url: str, data: bytes) -> LiveRun:
    """WS /asr/ws at real-time pace: when each phrase's first message and each partial arrive, and the final text."""
    pcm = (np.clip(decode_audio(data), -1, 1) * 32767).astype("<i2").tobytes()
    frame = 3200  # 100 ms
    started = time.perf_counter()
    first: dict[float, float] = {}  # phrase end → latency of its first message
    stable: list[float] = []
    final, ended, final_at = "", 0.0, 0.0
    async with websockets.connect(url.replace("http", "ws") + "/asr/ws", max_size=None, ping_interval=None) as socket:

        async def sender() -> None:
            nonlocal ended
            for index, offset in enumerate(range(0, len(pcm), frame)):
                await socket.send(pcm[offset : offset + frame])
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.1 - time.perf_counter()))
            await socket.send(json.dumps({"event": "end"}))
            ended = time.perf_counter()

        async def receiver() -> None:
            nonlocal final, final_at
            async for message in socket:
                event = json.loads(message)
                now = time.perf_counter() - started
                if event["type"] == "draft" or (event["type"] == "partial" and not drafted(first, event)):
                    first.setdefault(event["end"], now - event["end"])
                if event["type"] == "partial":
                    stable.append(now - event["end"])
                elif event["type"] == "final":
                    final, final_at = event["text"], time.perf_counter()

        await asyncio.gather(sender(), receiver())
    return LiveRun(list(first.values()), stable, final, final_at - ended, os.getloadavg()[0])


def drafted(first: dict[float, float], event: dict) -> bool:
    """Whether a partial's stretch had drafts (its phrases then count from their drafts)."""
    return any(event["start"] <= end <= event["end"] for end in first)


def live_only() -> None:
    """``bench/asr.py --live [TREE ...] [--runs N]``: per phrase, the first message's latency (p50, max) and the
    final WER, serving each TREE's code in turn (default: this one), runs interleaved so they share the load."""
    from tests.asr.speech import word_error_rate

    args = sys.argv[sys.argv.index("--live") + 1 :]
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else 1
    trees = [Path(a).resolve() for a in args if not a.startswith("--") and not a.isdigit()] or [ROOT]
    cache = ROOT / ".data/models"
    with tempfile.TemporaryDirectory() as tmp:
        data = speak(LIVE_TEXT, Path(tmp) / "live.wav").read_bytes()
    for run in range(runs):
        for tree in trees:
            service, url = start_service("asr", service_env(cache), ready_timeout_s=120, tree=tree)
            try:
                result = asyncio.run(live_latencies(url, data))
            finally:
                stop_process(service)
            first, stable = np.array(result.first), np.array(result.stable or [np.nan])
            wer = word_error_rate(LIVE_TEXT, result.final)
            print(
                f"run {run + 1} {tree.name}: load {result.load:.1f}; {first.size} phrases, first message after the"
                f" phrase end p50 {np.median(first):.2f} s, max {first.max():.2f} s; {len(result.stable)} partials"
                f" (full pass) p50 {np.median(stable):.2f} s, max {stable.max():.2f} s; final"
                f" {result.final_after_end:.2f} s after the end event, WER {wer:.3f}",
                flush=True,
            )
            print(f"    final: {result.final}", flush=True)


def main() -> None:
    if "--live" in sys.argv:
        return live_only()
    cache = ROOT / ".data/models"
    settings = Settings(model_cache_dir=cache)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
    audio_seconds = sum(seconds_of(data) for data in files)
    print(f"{len(files)} files, {audio_seconds:.1f} s of speech; best of {REPEATS} runs", flush=True)

    ceiling = InProcess(settings)
    with running_service("asr", service_env(cache), ready_timeout_s=120) as url:
        with httpx.Client(trust_env=False) as client:
            ceiling.run(files[:1]), service_run(client, url, files[:1])  # warm-up
            inproc = sequential = float("inf")
            for _ in range(REPEATS):  # interleaved, so both see the same background load
                inproc = min(inproc, ceiling.run(files))
                sequential = min(sequential, service_run(client, url, files))
        concurrent = asyncio.run(service_concurrent(url, files))
        first, total, lines = first_stream_line(url, files[0])
        spans = ceiling.transcriber.engine.speech_spans(decode_audio(files[0]))
        phrase_end = spans[0].end / 16_000
        live = asyncio.run(live_first_partial(url, files[0], phrase_end))

    rows = [
        ("in-process pipeline (ceiling)", f"RTF {inproc / audio_seconds:.3f}", "1.00"),
        ("service, POST /asr one at a time", f"RTF {sequential / audio_seconds:.3f}", f"{inproc / sequential:.2f}"),
        (
            "service, 4 concurrent uploaders",
            f"{4 * audio_seconds / concurrent:.2f} audio s/s",
            f"{(4 * audio_seconds / concurrent) / (audio_seconds / sequential):.2f} x sequential",
        ),
        ("/asr/stream first partial", f"{first:.2f} s of {total:.2f} s ({lines} lines)", f"{first / total:.2f}"),
        ("WS /asr/ws, first draft/partial after phrase end", f"{live:.2f} s", "real-time paced"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':<32}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:<32}  {ratio}")


if __name__ == "__main__":
    main()

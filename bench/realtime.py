"""Realtime voice benchmark: end of the user's speech → first audio delta, per stage, on the real suite.

    .venv/bin/python bench/realtime.py                 # default Qwen, 3 runs of 6 questions, 4 concurrent
    .venv/bin/python bench/realtime.py --model smollm2:135m --runs 1

asr (Whisper base), tts (espeak-ng) and llm run as their own processes (``lingxi serve``) on 127.0.0.1;
the llm's ``WS /v1/realtime`` is driven by the openai SDK. Speech is espeak-ng's, sent in 100 ms
frames in real time, so the true end of speech is the moment its last frame was sent. Stages, each
measured at the client from that end:

* VAD hang-over: until ``input_audio_buffer.speech_stopped`` (``silence_duration_ms`` 500 by default);
* transcription: from there until ``conversation.item.input_audio_transcription.delta`` (asr's quick
  draft, which the answer starts from); ``asr_full``: until ``...completed`` (the full pass's text);
* answer: from the draft until the first ``response.output_audio.delta`` (the llm's first clause, then tts);
  the llm's first token alone is measured by a text-only response to the same conversation after each turn.

Barge-in: speech sent while an answer plays; the time from its first frame to the cancelled
``response.done`` (after which no audio of that answer comes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import running_service  # noqa: E402
from tests.llm.realtime_client import client, silence, spoken_pcm  # noqa: E402

QUESTIONS = [
    ("en", "What is the capital of France?"),
    ("en", "How many days are in a week?"),
    ("en", "What color is the sky?"),
    ("zh", "北京是哪个国家的首都？"),
    ("zh", "一个星期有几天？"),
    ("zh", "天空是什么颜色的？"),
]
FRAME_MS = 100
FRAME = 24_000 * 2 * FRAME_MS // 1000
INSTRUCTIONS = {"en": "Answer in one short sentence.", "zh": "请用一句简短的中文回答。"}


async def send_like_a_microphone(connection: Any, pcm: bytes) -> None:
    """Send ``pcm`` frame by frame, each when a microphone would have it (at the end of its 100 ms),
    then silence, until cancelled."""
    start = time.perf_counter()
    frames = [pcm[offset : offset + FRAME] for offset in range(0, len(pcm), FRAME)]
    index = 0
    while True:
        frame = frames[index] if index < len(frames) else silence(FRAME_MS)
        await asyncio.sleep(max(0.0, start + (index + 1) * FRAME_MS / 1000 - time.perf_counter()))
        await connection.input_audio_buffer.append(audio=base64.b64encode(frame).decode())
        index += 1


async def times_of(connection: Any, *last: str) -> dict[str, float]:
    """When each kind of event came first, until one of each of ``last`` has come."""
    seen: dict[str, float] = {}
    while not all(kind in seen for kind in last):
        event = await asyncio.wait_for(connection.recv(), 120)
        seen.setdefault(event.type, time.perf_counter())
    return seen


def loud(pcm: bytes) -> tuple[int, int]:
    """The first and last sample of the speech in ``pcm`` (espeak-ng's files have silence at each end)."""
    samples = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32))
    where = np.nonzero(samples > 0.02 * 32768)[0]
    return int(where[0]), int(where[-1]) + 1


async def next_of(connection: Any, *kinds: str) -> tuple[dict[str, Any], float]:
    while True:
        event = await asyncio.wait_for(connection.recv(), 120)
        if event.type in kinds:
            return event.model_dump(), time.perf_counter()


async def turn(url: str, language: str, speech: bytes, *, first_token: bool) -> dict[str, float]:
    session: Any = {
        "instructions": INSTRUCTIONS[language],
        "audio": {"input": {"transcription": {"model": "whisper-1", "language": language}}},
    }
    async with client(url).realtime.connect(model="gpt-realtime") as connection:
        await connection.session.update(session=session)
        sent = silence(300) + speech
        end = time.perf_counter() + loud(sent)[1] / 24_000  # the true end of speech, on the microphone's clock
        sender = asyncio.create_task(send_like_a_microphone(connection, sent))
        try:
            seen = await times_of(connection, "response.done", "conversation.item.input_audio_transcription.completed")
        finally:
            sender.cancel()
        stopped = seen["input_audio_buffer.speech_stopped"]
        heard = seen["conversation.item.input_audio_transcription.delta"]
        audio = seen["response.output_audio.delta"]
        times = {
            "vad": stopped - end,
            "asr": heard - stopped,
            "asr_full": seen["conversation.item.input_audio_transcription.completed"] - stopped,
            "answer": audio - heard,
            "total": audio - end,
        }
        if first_token:
            await connection.response.create(response={"output_modalities": ["text"]})
            _, created = await next_of(connection, "response.created")
            event, token = await next_of(connection, "response.output_text.delta", "response.done")
            if event["type"] != "response.done":  # an empty answer has no first token
                await next_of(connection, "response.done")
                times["first_token"] = token - created
    return times


async def barge_in(url: str, speech: bytes) -> float:
    async with client(url).realtime.connect(model="gpt-realtime") as connection:
        item: Any = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Tell a long story."}],
        }
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        await next_of(connection, "response.output_audio.delta")
        started = time.perf_counter() + loud(speech)[0] / 24_000  # when the speech's first sound is heard
        sender = asyncio.create_task(send_like_a_microphone(connection, speech))
        try:
            done, stopped = await next_of(connection, "response.done")
        finally:
            sender.cancel()
        assert done["response"]["status"] == "cancelled", done["response"]["status"]
        return stopped - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {statistics.median(values) * 1000:.0f} | {pct(values, 0.95) * 1000:.0f} | {len(values)} |"


async def bench(url: str, speech: dict[str, bytes], runs: int, concurrent: int) -> None:
    results: list[tuple[str, dict[str, float]]] = []
    await turn(url, "en", speech[QUESTIONS[0][1]], first_token=False)  # warm-up: models, VAD, connections
    for _ in range(runs):
        for language, text in QUESTIONS:
            results.append((language, await turn(url, language, speech[text], first_token=True)))
    print("| stage (one session) | p50 ms | p95 ms | n |\n|---|---|---|---|")
    for stage in ("vad", "asr", "asr_full", "first_token", "answer", "total"):
        print(row(stage, [r[stage] for _, r in results if stage in r]))
    for language in ("en", "zh"):
        print(row(f"total, {language}", [r["total"] for lang, r in results if lang == language]))
    cuts = [await barge_in(url, speech[QUESTIONS[1][1]]) for _ in range(3)]
    print(row("barge-in: speech start → response.done cancelled", cuts))
    together: list[dict[str, float]] = []
    for round_ in range(2):
        picks = [QUESTIONS[(round_ * concurrent + i) % len(QUESTIONS)] for i in range(concurrent)]
        together += await asyncio.gather(*(turn(url, lang, speech[text], first_token=False) for lang, text in picks))
    for stage in ("vad", "asr", "answer", "total"):
        print(row(f"{stage}, {concurrent} sessions at once", [t[stage] for t in together]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="", help="LLM_EMBEDDED_MODEL (default: the embedded default, Qwen)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        speech = {
            text: spoken_pcm(text, Path(directory) / f"q{i}", chinese=language == "zh")
            for i, (language, text) in enumerate(QUESTIONS)
        }
        with running_service("asr") as asr, running_service("tts") as tts:
            env = {"LLM_ASR_URL": asr, "LLM_TTS_URL": tts, "LLM_EMBEDDING_URL": "", "LLM_LOCAL_MAX_QUEUE": "64"}
            if args.model:
                env["LLM_EMBEDDED_MODEL"] = args.model
            with running_service("llm", env) as url:
                print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
                asyncio.run(bench(url, speech, args.runs, args.concurrent))
                print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()

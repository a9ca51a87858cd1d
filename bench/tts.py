"""tts benchmark: the service (`lingxi serve tts`, waitress, espeak engine) against the engine called
in-process (its ceiling), plus time to first audio byte with stream=true vs. without.

    .venv/bin/python bench/tts.py [--rounds 20]

Prints a table of ratios. Binds only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tts.audio import read_wav  # noqa: E402
from tts.config import Settings  # noqa: E402
from tts.engines.base import SynthesisRequest  # noqa: E402
from tts.engines.espeak import EspeakEngine  # noqa: E402
from tts.synthesis import Synthesizer  # noqa: E402
from tts.text import split_sentences  # noqa: E402

PARAGRAPH = (
    "Speech synthesis turns written text into audio. This benchmark reads a short paragraph many times. "
    "Each sentence is synthesised on its own and the pieces are joined with short pauses. "
    "今天天气很好，我们去公园散步吧。The service adds parsing, encoding and HTTP on top of the engine. "
    "A good service costs almost nothing beyond the engine itself."
)
TEN_SENTENCES = " ".join(f"This is sentence number {n}, read aloud one after another." for n in range(1, 11))


def start_service(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TTS_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "tts", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the tts service did not become ready")


def rtf_in_process(rounds: int) -> float:
    settings = Settings()
    synthesizer = Synthesizer(settings, EspeakEngine)
    synthesizer.load()
    sentences = split_sentences(PARAGRAPH, settings.max_sentence_chars)
    request = SynthesisRequest(text="", style="style1")
    synthesizer.synthesize(request, sentences)  # warm-up
    spent = audio = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        result = synthesizer.synthesize(request, sentences)
        spent += time.perf_counter() - started
        audio += result.seconds
    return spent / audio


def rtf_service(client: httpx.Client, url: str, rounds: int) -> float:
    client.post(f"{url}/synthesize", data={"text": PARAGRAPH})  # warm-up
    spent = audio = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(f"{url}/synthesize", data={"text": PARAGRAPH})
        spent += time.perf_counter() - started
        response.raise_for_status()
        audio += read_wav(response.content).seconds
    return spent / audio


def first_byte(client: httpx.Client, url: str, stream: bool, rounds: int) -> float:
    """Median seconds from sending the request to the first byte of audio in the body."""
    times = []
    form = {"text": TEN_SENTENCES, "stream": "true" if stream else "false"}
    for _ in range(rounds):
        started = time.perf_counter()
        with client.stream("POST", f"{url}/synthesize", data=form) as response:
            response.raise_for_status()
            chunks = response.iter_raw()
            next(chunks)
            times.append(time.perf_counter() - started)
            for _chunk in chunks:
                pass
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    service = start_service(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=120, trust_env=False) as client:
            engine_rtf = rtf_in_process(args.rounds)
            service_rtf = rtf_service(client, url, args.rounds)
            ttfb_whole = first_byte(client, url, stream=False, rounds=args.rounds)
            ttfb_stream = first_byte(client, url, stream=True, rounds=args.rounds)
    finally:
        service.terminate()
        service.wait(timeout=10)
    print(f"tts benchmark, {date.today()}, {platform.machine()} {os.cpu_count()} cores, espeak engine")
    print(f"{'measure':<58} {'value':>10}")
    print(f"{'RTF, engine in-process (synthesis s / audio s)':<58} {engine_rtf:>10.4f}")
    print(f"{'RTF, service over HTTP':<58} {service_rtf:>10.4f}")
    print(f"{'service speed / engine speed (RTF engine / RTF service)':<58} {engine_rtf / service_rtf:>10.3f}")
    print(f"{'time to first audio byte, ten sentences, stream=false (s)':<58} {ttfb_whole:>10.4f}")
    print(f"{'time to first audio byte, ten sentences, stream=true (s)':<58} {ttfb_stream:>10.4f}")
    print(f"{'first byte: stream=true / stream=false':<58} {ttfb_stream / ttfb_whole:>10.3f}")


if __name__ == "__main__":
    main()

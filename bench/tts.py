"""tts benchmark: the service (`lingxi serve tts`, waitress, espeak engine) against the engine called
in-process (its ceiling), plus time to first audio byte with stream=true vs. without.

    .venv/bin/python bench/tts.py [--rounds 20]

Prints a table of ratios. Binds only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import time
import urllib.parse
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import running_service  # noqa: E402
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


def rtf_pair(url: str, rounds: int) -> tuple[float, float, float]:
    """Median RTF of the engine in-process and of the service, measured in alternation (one
    in-process call, then one HTTP request, per round) so that the machine's noise hits both alike.
    The HTTP client is the standard library's (lean, like curl): httpx alone adds ~5 % here."""
    settings = Settings()
    synthesizer = Synthesizer(settings, EspeakEngine)
    synthesizer.start().join()
    sentences = split_sentences(PARAGRAPH, settings.max_sentence_chars)
    request = SynthesisRequest(text="", style="style1")
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=120)
    form = urllib.parse.urlencode({"text": PARAGRAPH})
    engine_rtf, service_rtf, ratios = [], [], []
    for round_ in range(rounds + 2):  # the first two rounds warm up
        started = time.perf_counter()
        audio = synthesizer.synthesize(request, sentences)
        engine_s = time.perf_counter() - started
        started = time.perf_counter()
        connection.request("POST", "/synthesize", form, {"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        body = response.read()
        service_s = time.perf_counter() - started
        assert response.status == 200, body[:200]
        if round_ >= 2:
            engine_rtf.append(engine_s / audio.seconds)
            service_rtf.append(service_s / read_wav(body).seconds)
            ratios.append(engine_s / service_s)
    return statistics.median(engine_rtf), statistics.median(service_rtf), statistics.median(ratios)


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
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with running_service("tts", {"TTS_LOG_LEVEL": "warning"}, ready_timeout_s=60) as url:
        with httpx.Client(timeout=120, trust_env=False) as client:
            engine_rtf, service_rtf, paired = rtf_pair(url, args.rounds)
            ttfb_whole = first_byte(client, url, stream=False, rounds=args.rounds)
            ttfb_stream = first_byte(client, url, stream=True, rounds=args.rounds)
    print(f"tts benchmark, {date.today()}, {platform.machine()} {os.cpu_count()} cores, espeak engine")
    print(f"{'measure':<58} {'value':>10}")
    print(f"{'RTF, engine in-process (synthesis s / audio s)':<58} {engine_rtf:>10.4f}")
    print(f"{'RTF, service over HTTP':<58} {service_rtf:>10.4f}")
    print(f"{'service speed / engine speed (RTF engine / RTF service)':<58} {engine_rtf / service_rtf:>10.3f}")
    print(f"{'  the same, median of per-round ratios (paired rounds)':<58} {paired:>10.3f}")
    print(f"{'time to first audio byte, ten sentences, stream=false (s)':<58} {ttfb_whole:>10.4f}")
    print(f"{'time to first audio byte, ten sentences, stream=true (s)':<58} {ttfb_stream:>10.4f}")
    print(f"{'first byte: stream=true / stream=false':<58} {ttfb_stream / ttfb_whole:>10.3f}")


if __name__ == "__main__":
    main()

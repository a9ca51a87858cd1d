"""Driving ``WS /v1/realtime`` with the openai SDK; every server event is checked against the SDK's own types."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from openai.types.beta.realtime.realtime_server_event import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from pydantic import TypeAdapter

GA_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
BETA_EVENTS: TypeAdapter[Any] = TypeAdapter(BetaServerEvent)
RATE = 24_000


def client(url: str, api_key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=api_key, base_url=f"{url}/v1", websocket_base_url=f"{url.replace('http', 'ws')}/v1")


async def receive(connection: Any, *, beta: bool = False, timeout: float = 60) -> dict[str, Any]:
    """The next server event as sent, after the SDK's type for it has validated it."""
    raw = await asyncio.wait_for(connection.recv_bytes(), timeout)
    event = json.loads(raw)
    (BETA_EVENTS if beta else GA_EVENTS).validate_python(event)
    assert isinstance(event.get("event_id"), str) and event["event_id"]
    return event


async def until(connection: Any, kind: str, *, beta: bool = False, timeout: float = 90) -> list[dict[str, Any]]:
    """Every event up to and including the first of ``kind``."""
    events = []
    while True:
        event = await receive(connection, beta=beta, timeout=timeout)
        events.append(event)
        if event["type"] == kind:
            return events


async def until_all(connection: Any, *kinds: str, beta: bool = False, timeout: float = 90) -> list[dict[str, Any]]:
    """Every event until one of each of ``kinds`` has come (the transcript may follow the answer)."""
    events: list[dict[str, Any]] = []
    while not set(kinds) <= set(types(events)):
        events.append(await receive(connection, beta=beta, timeout=timeout))
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def audio_of(events: list[dict[str, Any]], kind: str = "response.output_audio.delta") -> bytes:
    return b"".join(base64.b64decode(event["delta"]) for event in events if event["type"] == kind)


def spoken_pcm(text: str, path: Path, *, chinese: bool = False) -> bytes:
    """espeak-ng's speech of ``text`` as PCM16 24 kHz mono (sox resamples it)."""
    voice = ["-v", "cmn-latn-pinyin", "-s", "120"] if chinese else ["-v", "en-us", "-s", "150"]
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", *voice, "-w", str(wav), text], check=True)
    raw = path.with_suffix(".raw")
    subprocess.run(["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", str(raw)], check=True)
    return raw.read_bytes()


def silence(ms: int) -> bytes:
    return b"\0\0" * (RATE * ms // 1000)


async def send_audio(connection: Any, pcm: bytes, chunk_ms: int = 100) -> None:
    step = RATE * 2 * chunk_ms // 1000
    for start in range(0, len(pcm), step):
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + step]).decode())

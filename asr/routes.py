"""``WS /asr/ws``: the conversation with one live client.

Client → server: an optional first JSON text message ``{"sample_rate": 8000, "format": "pcm_s16le",
"language": "en"}``, then binary frames of mono PCM16 (16 kHz unless said otherwise), then
``{"event": "end"}``. Server → client: ``{"type": "partial", "text", "partial_text", "start", "end"}``
each time a pause closes a stretch of speech, ``{"type": "final", "final": true, "text", ...}`` after
the end event, or ``{"type": "error", "error": {...}}``; then it closes the socket.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from asr.engines.base import SAMPLE_RATE, Span
from asr.live import LiveBuffer, Resampler, StreamFormat
from asr.pipeline import Collector, Transcriber
from services.errors import BadRequest, LingxiError

log = logging.getLogger("lingxi.asr")
CLOSE_CODES = {400: 1003, 413: 1009, 429: 1013, 503: 1013}


async def live_session(websocket: WebSocket, transcriber: Transcriber) -> None:
    await websocket.accept()
    try:
        ticket = transcriber.acquire()
    except LingxiError as exc:
        await reject(websocket, exc)
        return
    try:
        await converse(websocket, transcriber)
    except WebSocketDisconnect:
        pass
    except LingxiError as exc:
        await reject(websocket, exc)
    finally:
        ticket.release()


async def reject(websocket: WebSocket, exc: LingxiError) -> None:
    try:
        await websocket.send_json({"type": "error", "error": exc.to_dict()})
        await websocket.close(CLOSE_CODES.get(exc.status_code, 1011), exc.message[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass


async def converse(websocket: WebSocket, transcriber: Transcriber) -> None:
    settings = transcriber.settings
    fmt = StreamFormat()
    resample = Resampler(fmt.sample_rate)
    buffer = LiveBuffer(max_piece_seconds=settings.chunk_seconds, max_total_seconds=settings.ws_max_seconds)
    language = transcriber.check_language(fmt.language)
    collected = Collector(0.0, language)
    first = True
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            buffer.add(resample(message["bytes"]))
            if buffer.due:
                await emit_closed(websocket, transcriber, buffer, collected, final=False)
        elif message.get("text") is not None:
            event = parse_json(message["text"])
            if event.get("event") == "end":
                await emit_closed(websocket, transcriber, buffer, collected, final=True)
                collected.duration = buffer.total / SAMPLE_RATE
                body = collected.result()
                await websocket.send_json(
                    {
                        "type": "final",
                        "final": True,
                        "text": body.text,
                        "partial_text": body.text,
                        "language": body.language,
                        "duration": round(body.duration, 3),
                        "emotion": body.emotion,
                        "event": body.event,
                    }  # fmt: skip
                )
                await websocket.close()
                return
            if first and buffer.total == 0:
                fmt = StreamFormat.parse(event)
                resample = Resampler(fmt.sample_rate)
                collected.language = transcriber.check_language(fmt.language)
            else:
                raise BadRequest('send binary PCM16 frames, then {"event": "end"}')
        first = False


def parse_json(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("text messages must be JSON") from exc
    if not isinstance(event, dict):
        raise BadRequest("text messages must be JSON objects")
    return event


async def emit_closed(
    websocket: WebSocket, transcriber: Transcriber, buffer: LiveBuffer, collected: Collector, *, final: bool
) -> None:
    """Transcribe and send what a pause has closed (everything left, when ``final``)."""
    while True:
        spans = await transcriber.speech(buffer.audio)
        taken = buffer.take_closed(spans, final=final)
        if taken is None:
            return
        audio, at = taken
        whole = Span(0, audio.size)
        transcript, segments = await transcriber.transcribe_piece(audio, whole, collected.language, None, False, at)
        collected.add(transcript, segments, transcriber.engine.languages)
        if transcript.text:
            await websocket.send_json(
                {
                    "type": "partial",
                    "text": transcript.text,
                    "partial_text": collected.text,
                    "start": round(at, 3),
                    "end": round(at + audio.size / SAMPLE_RATE, 3),
                }  # fmt: skip
            )
        if not final:
            return

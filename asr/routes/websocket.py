"""``WS /asr/ws``, live transcription.

It is a conversation with one live client. Client → server: an optional first JSON text message
``{"sample_rate": 8000, "format": "pcm_s16le", "language": "en", "full_pass": "at_end"}``, then binary
frames of mono PCM16 (16 kHz unless said otherwise), then ``{"event": "end"}``. Server → client:
``{"type": "draft", "text", "partial_text", "start", "end"}`` soon after a pause closes a phrase (the
engine's quick pass), ``{"type": "partial", ...}`` when the full pass has its text (partials never
change; the final text is theirs joined), ``{"type": "final", "final": true, "text", ...}`` after the
end event, or ``{"type": "error", "error": {...}}``; then it closes the socket. ``full_pass: "at_end"``
holds the full passes until the end event (drafts only while the audio streams). ``asr.live`` has the how.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from asr.live import LiveSession, Resampler, StreamFormat
from asr.pipeline import Transcriber
from asr.routes.common import TranscriberDep
from services.errors import BadRequest, LingxiError

CLOSE_CODES = {400: 1003, 413: 1009, 429: 1013, 503: 1013}
router = APIRouter()


@router.websocket("/asr/ws")
async def asr_ws(websocket: WebSocket, transcriber: TranscriberDep) -> None:
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
    """Read frames and work on them side by side: the socket is read (and pings answered) while the model runs."""
    session = LiveSession(transcriber, websocket.send_json)
    reader = asyncio.create_task(read_frames(websocket, session))
    worker = asyncio.create_task(session.run())
    try:
        done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # the client's bad input, its disconnect or the engine's error
    finally:
        reader.cancel()
        worker.cancel()
    body = worker.result()
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


async def read_frames(websocket: WebSocket, session: LiveSession) -> None:
    """PCM16 frames into the session until ``{"event": "end"}``; a first JSON message may name the format."""
    transcriber = session.transcriber
    resample = Resampler(StreamFormat().sample_rate)
    first = True
    while True:
        await session.room()
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            session.add(resample(message["bytes"]))
        elif message.get("text") is not None:
            event = parse_json(message["text"])
            if event.get("event") == "end":
                session.end()
                return
            if first and session.buffer.total == 0:
                fmt = StreamFormat.parse(event)
                resample = Resampler(fmt.sample_rate)
                session.set_format(transcriber.check_language(fmt.language), fmt.full_pass)
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

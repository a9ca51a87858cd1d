"""``WS /v1/realtime``: OpenAI's Realtime API (GA names; beta names with ``OpenAI-Beta: realtime=v1``).

The key comes as for the rest of ``/v1`` (``Authorization: Bearer``), or, from a browser, as the
``openai-insecure-api-key.<key>`` subprotocol (the kernel checks either). ``model`` names one of the
llm's models; another name (``gpt-realtime``, as OpenAI's clients send) is served by the default model.
``intent=transcription`` opens a transcription session.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from llm.config import Settings
from llm.realtime.connection import Connection
from llm.realtime.session import SessionConfig
from llm.routes.common import ModelsDep, SiblingsDep
from services.errors import NotFound

router = APIRouter()
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket, models: ModelsDep, hub: SiblingsDep) -> None:
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    beta = "realtime=v1" in websocket.headers.get("openai-beta", "") or BETA_SUBPROTOCOL in offered
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    requested = websocket.query_params.get("model") or None
    try:
        route, _ = models.resolve(requested)
    except NotFound:
        route, _ = models.resolve(None)
    intent = "transcription" if websocket.query_params.get("intent") == "transcription" else "realtime"
    config = SessionConfig(model=requested or route.name, route=route.name, intent=intent)
    settings: Settings = websocket.app.state.settings
    connection = Connection(websocket, config=config, beta=beta, models=models, siblings=hub,
                            max_session_s=settings.realtime_max_session_s,
                            max_buffer_s=settings.realtime_max_buffer_s)  # fmt: skip
    live: set[Connection] = websocket.app.state.realtime_sessions
    live.add(connection)
    try:
        await connection.serve()
    finally:
        live.discard(connection)

"""asr routes as one router: the seed API (``seed``), OpenAI's audio API (``openai_api``) and live
transcription over a WebSocket (``websocket``)."""

from fastapi import APIRouter

from asr.routes import openai_api, seed, websocket

router = APIRouter()
for part in (seed, openai_api, websocket):
    router.include_router(part.router)

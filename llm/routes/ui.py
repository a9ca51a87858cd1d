"""``GET /ui/voice``: a page that talks to ``WS /v1/realtime`` from the browser's microphone."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@cache
def page() -> str:
    return (Path(__file__).resolve().parents[1] / "ui" / "voice.html").read_text(encoding="utf-8")


@router.get("/ui/voice", response_class=HTMLResponse, include_in_schema=False)
async def voice_page() -> HTMLResponse:
    return HTMLResponse(page())

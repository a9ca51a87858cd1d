"""The voice page, ``/ui/voice``: talk to lingxi from a browser over ``WS /v1/realtime``. Its files are
served from ``llm/static``; no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.mount("/ui/voice/assets", StaticFiles(directory=STATIC), name="voice-assets")

    @app.get("/ui/voice", include_in_schema=False)
    async def voice() -> HTMLResponse:
        return HTMLResponse((STATIC / "voice.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})

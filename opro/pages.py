"""The web pages: ``/ui/`` (three columns, and the OPRO "Optimize" view), ``/ui/react`` (+ ``/react``),
``/ui/offline`` (one self-contained HTML file). Every asset is served from ``opro/static``; no CDN."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}
SCRIPTS = ("app.js", "optimize.js")  # in the order index.html loads them


def read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def offline_page() -> str:
    """index.html with its stylesheet and scripts inlined: the page loads nothing else at all."""
    page = read("index.html")
    style = "<style>\n" + read("style.css") + "</style>"
    script = "".join("<script>\n" + read(name).replace("</script", "<\\/script") + "</script>" for name in SCRIPTS)
    page = re.sub(r"<!--STYLE-->.*?<!--/STYLE-->", lambda _: style, page, flags=re.S)
    return re.sub(r"<!--SCRIPT-->.*?<!--/SCRIPT-->", lambda _: script, page, flags=re.S)


def mount(app: FastAPI) -> None:
    app.mount("/ui/assets", StaticFiles(directory=STATIC), name="ui-assets")

    @app.get("/ui", include_in_schema=False)
    async def ui_redirect() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/ui/", include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(read("index.html"), headers=NO_CACHE)

    @app.get("/ui/react", include_in_schema=False)
    @app.get("/react", include_in_schema=False)
    async def react() -> HTMLResponse:
        return HTMLResponse(read("react.html"), headers=NO_CACHE)

    @app.get("/ui/offline", include_in_schema=False)
    async def offline() -> HTMLResponse:
        return HTMLResponse(offline_page(), headers=NO_CACHE)

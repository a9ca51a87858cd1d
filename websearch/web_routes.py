"""Web search routes: ``GET /search/web`` and Open WebUI's external search and external web loader."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.app import app_state
from services.errors import BadRequest
from websearch.config import Settings
from websearch.routes import checked
from websearch.web import WebSearch

WebSearchDep = Annotated[WebSearch, app_state("web")]
SettingsDep = Annotated[Settings, app_state("settings")]
router = APIRouter()
LANGUAGE = re.compile(r"(all|auto|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)")  # SearXNG's: all, auto, zh, zh-CN, en-US …


@router.get("/search/web")
async def search_web(
    web: WebSearchDep, settings: SettingsDep, q: str = "", limit: int = 5, lang: str | None = None
) -> dict[str, Any]:
    if not 1 <= limit <= settings.web_max_results:
        raise BadRequest(f"limit must be between 1 and {settings.web_max_results}")
    checked(q, limit, settings)
    if lang is not None and not LANGUAGE.fullmatch(lang):
        raise BadRequest(f"lang must be a language code such as zh, en or zh-CN (or all, auto), not {lang!r}")
    return await web.search(q, limit, lang or None)


class OpenWebUISearch(BaseModel):
    query: str
    count: int = 5


class OpenWebUILoad(BaseModel):
    urls: list[str]


@router.post("/openwebui/search")
async def openwebui_search(body: OpenWebUISearch, web: WebSearchDep, settings: SettingsDep) -> list[dict[str, str]]:
    """Open WebUI's "external" web search provider. ``count`` above web_max_results is cut to it rather than
    refused: Open WebUI turns any error into "no results" without a word."""
    if body.count < 1:
        raise BadRequest("count must be at least 1")
    count = min(body.count, settings.web_max_results)
    checked(body.query, count, settings)
    answer = await web.search(body.query, count, None)
    return [{"link": r["url"], "title": r["title"], "snippet": r["snippet"]} for r in answer["results"]]


@router.post("/openwebui/load")
async def openwebui_load(body: OpenWebUILoad, web: WebSearchDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """Open WebUI's external web loader: the text of each page that could be fetched, in the order asked."""
    if not body.urls:
        raise BadRequest("urls must name at least one URL")
    if len(body.urls) > settings.bulk_max_urls:
        raise BadRequest(f"at most {settings.bulk_max_urls} URLs per call (got {len(body.urls)})")
    return await web.load(body.urls)

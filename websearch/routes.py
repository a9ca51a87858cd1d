"""websearch routes: ingest pages and search them by keyword, meaning, or both (the seed's shapes)."""

from __future__ import annotations

from datetime import timezone
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.app import app_state
from services.errors import BadRequest, NotFound
from websearch.config import Settings
from websearch.index import WebIndex
from websearch.store import isoformat

IndexDep = Annotated[WebIndex, app_state("index")]
SettingsDep = Annotated[Settings, app_state("settings")]
router = APIRouter()


class IngestRequest(BaseModel):
    url: str


class BulkIngestRequest(BaseModel):
    urls: list[str]


@router.post("/ingest")
async def ingest(body: IngestRequest, index: IndexDep) -> dict[str, Any]:
    return await index.ingest(body.url)


@router.post("/bulk_ingest")
async def bulk_ingest(body: BulkIngestRequest, index: IndexDep, settings: SettingsDep) -> list[dict[str, Any]]:
    if not body.urls:
        raise BadRequest("urls must name at least one URL")
    if len(body.urls) > settings.bulk_max_urls:
        raise BadRequest(f"at most {settings.bulk_max_urls} URLs per call (got {len(body.urls)})")
    return await index.bulk_ingest(body.urls)


def checked(q: str, limit: int, settings: Settings) -> str:
    if not q or not q.strip():
        raise BadRequest("q must not be empty")
    if len(q) > 1000:
        raise BadRequest("q is longer than 1000 characters")
    if not 1 <= limit <= settings.max_limit:
        raise BadRequest(f"limit must be between 1 and {settings.max_limit}")
    return q


@router.get("/search/keyword")
async def search_keyword(index: IndexDep, settings: SettingsDep, q: str = "", limit: int = 10) -> list[dict[str, Any]]:
    checked(q, limit, settings)
    return index.shape(await index.keyword(q, limit), q)


@router.get("/search/semantic")
async def search_semantic(index: IndexDep, settings: SettingsDep, q: str = "", limit: int = 10) -> list[dict[str, Any]]:
    checked(q, limit, settings)
    return index.shape(await index.semantic(q, limit), q)


@router.get("/search/hybrid")
async def search_hybrid(
    index: IndexDep, settings: SettingsDep, q: str = "", limit: int = 10, alpha: float = 0.7, fusion: str = "minmax"
) -> list[dict[str, Any]]:
    checked(q, limit, settings)
    if not 0.0 <= alpha <= 1.0:
        raise BadRequest("alpha must be between 0 and 1")
    if fusion not in ("minmax", "rrf"):
        raise BadRequest("fusion must be 'minmax' or 'rrf'")
    return index.shape(await index.hybrid(q, limit, alpha, fusion), q)


@router.get("/page")
async def page(index: IndexDep, url: str | None = None, id: int | None = None) -> dict[str, Any]:  # noqa: A002 (seed's name)
    if url is None and id is None:
        raise BadRequest("give ?url= or ?id=")
    row = await index.store.page(url=url, page_id=id)
    if row is None:
        raise NotFound(f"no page with {'url ' + url if url is not None else f'id {id}'}")
    return {
        "content": row["content"],
        "fetched_at": format_datetime(row["fetched_at"].astimezone(timezone.utc), usegmt=True),
        "html": row["html"],
        "id": row["id"],
        "lang": row["lang"],
        "published_at": isoformat(row["published_at"]),
        "site": row["site"],
        "title": row["title"],
        "url": row["url"],
    }

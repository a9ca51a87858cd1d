"""vlm routes: describe an image, whole or streamed as plain text.

``POST /describe_image`` and ``POST /describe_image_stream`` take JSON ``{"text", "image_url"}`` (an
http(s) or ``data:`` URL) or ``image_base64``, or a multipart upload ``image`` + ``text``; optional
``max_tokens``, ``temperature``, ``model``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from services.app import app_state
from services.engine import Lifecycle
from services.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from services.fetch import SafeFetcher
from services.health import Health
from services.media import ImageLimits
from services.streaming import text_chunks
from vlm.config import Settings
from vlm.engines import ENGINES, engine_label
from vlm.engines.base import DescribeRequest, VisionEngine
from vlm.images import ImageSource

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class DescribeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str | None = Field(None, description="The prompt; default: a describe-this-image prompt.")
    image_url: str | None = Field(None, description="http(s) URL or data: URL of the image.")
    image_base64: str | None = Field(None, description="The image file, base64 encoded.")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    model: str | None = None


class VlmService:
    """What the routes need: the engine, where images come from, the request limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifecycle = Lifecycle.build(engine_label(settings), lambda: ENGINES[settings.engine](settings))
        self.fetcher = SafeFetcher(
            allowed_hosts=settings.allowed_hosts,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=min(settings.fetch_max_bytes, settings.max_image_bytes),
        )
        limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels, settings.image_max_side)
        self.images = ImageSource(self.fetcher, limits)

    @property
    def engine(self) -> VisionEngine:
        return self.lifecycle.require()

    async def health(self) -> Health:
        engine = self.lifecycle.engine
        if engine is not None and self.lifecycle.ready:
            return await engine.health()
        return self.lifecycle.health(engine.extra if engine else {"engine": self.settings.engine.value})

    async def parse(self, request: Request) -> DescribeRequest:
        self.lifecycle.require()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload: bytes | None = None
        if content_type == "application/json" or content_type.endswith("+json"):
            fields = await self._json_fields(request)
        elif content_type in FORM_TYPES:
            fields, upload = await self._form_fields(request)
        else:
            raise UnsupportedMediaType(
                "send JSON (Content-Type: application/json) or a multipart/form-data upload with 'image'"
            )
        try:
            body = DescribeBody.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from exc
        return await self._describe_request(body, upload)

    async def _json_fields(self, request: Request) -> dict[str, Any]:
        try:
            fields = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("request body is not valid JSON") from exc
        if not isinstance(fields, dict):
            raise BadRequest('the JSON body must be an object like {"text": "...", "image_url": "..."}')
        return fields

    async def _form_fields(self, request: Request) -> tuple[dict[str, Any], bytes | None]:
        part_limit = self.settings.max_image_bytes * 4 // 3 + 1024  # room for image_base64 as a field
        form = await request.form(max_part_size=part_limit)
        fields: dict[str, Any] = {}
        upload = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "image":
                    raise BadRequest(f"unexpected file field {key!r}; upload the image as 'image'")
                upload = await value.read(self.settings.max_image_bytes + 1)
                if len(upload) > self.settings.max_image_bytes:
                    raise PayloadTooLarge(f"the image is larger than {self.settings.max_image_bytes} bytes")
            elif key == "image":
                raise BadRequest("'image' must be a file upload (curl -F image=@picture.jpg)")
            elif value != "":
                fields[key] = value
        return fields, upload

    async def _describe_request(self, body: DescribeBody, upload: bytes | None) -> DescribeRequest:
        settings = self.settings
        prompt = (body.text or "").strip() or settings.default_prompt
        if len(prompt) > settings.max_text_chars:
            raise BadRequest(f"text is {len(prompt)} characters; the limit is {settings.max_text_chars}")
        max_tokens = body.max_tokens or settings.max_tokens
        if max_tokens > settings.max_tokens_limit:
            raise BadRequest(f"max_tokens is {max_tokens}; the limit is {settings.max_tokens_limit}")
        image = await self.images.load(body.image_url, body.image_base64, upload)
        return DescribeRequest(prompt, image, max_tokens, body.temperature, body.model or None)


ServiceDep = Annotated[VlmService, app_state("vlm")]
router = APIRouter()


@router.post("/describe_image")
async def describe_image(request: Request, service: ServiceDep) -> dict[str, str]:
    describe = await service.parse(request)
    return {"result": await service.engine.describe(describe)}


@router.post("/describe_image_stream")
async def describe_image_stream(request: Request, service: ServiceDep) -> StreamingResponse:
    describe = await service.parse(request)
    chunks = await service.engine.stream(describe)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(text_chunks(chunks), media_type="text/plain; charset=utf-8", headers=headers)

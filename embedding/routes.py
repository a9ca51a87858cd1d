"""embedding routes: parse → call the service → shape the seed / OpenAI / Cohere response.

Route order matters: the seed's catch-alls ``GET /{model}/{text}`` and ``POST /{model}`` come last,
and the app adds this router after the kernel's routes, so ``/health``, ``/livez``, ``/metrics``,
``/v1/...``, ``/similarity`` and ``/rerank`` win.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from embedding.engines.base import EmbedInput, InputType
from embedding.inputs import check_text, check_texts, parse_openai_input
from embedding.schemas import (
    CohereRerankRequest,
    EmbeddingsRequest,
    RerankRequest,
    SimilarityRequest,
    TextsRequest,
    parse_input_type,
)
from embedding.service import EmbeddingService
from embedding.vectors import cosine, to_base64
from services.app import app_state
from services.errors import BadRequest
from services.openai_models import model_list


class VectorsResponse(JSONResponse):
    """JSON with numpy vectors written by orjson: float32 in its shortest form, ~10x faster than json."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


RESERVED = {"health", "livez", "metrics", "similarity", "rerank", "v1", "docs", "redoc", "openapi.json"}
ServiceDep = Annotated[EmbeddingService, app_state("service")]
router = APIRouter()


def json_body(model: type[EmbeddingsRequest]) -> dict[str, Any]:
    """The OpenAPI requestBody of a route that parses ``model`` itself (its enums are the app's components)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# --- OpenAI / Cohere / Jina ------------------------------------------------------------------------
@router.post("/v1/embeddings", openapi_extra=json_body(EmbeddingsRequest))
async def openai_embeddings(request: Request) -> VectorsResponse:
    """The hot route: the body is parsed by pydantic straight from its bytes and the service read off the app,
    without FastAPI's body and dependency solving (a fifth of the event loop's time on a single-text request,
    docs/benchmarks.md). A bad body gets FastAPI's own validation errors, rendered as on every route."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media_type == "application/json" or media_type.startswith("application/") and media_type.endswith("+json")):
        raise BadRequest("send the request body as JSON, with Content-Type: application/json")
    try:
        body = EmbeddingsRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    service: EmbeddingService = request.app.state.service
    name = service.resolve_model(body.model)
    service.ready()  # 503 while loading, before any image is fetched
    allow_images = service.supports_images
    inputs = await parse_openai_input(body.input, service.settings, service.fetcher, allow_images=allow_images)
    result = await service.embed(inputs, body.input_type or InputType.document, body.dimensions)
    base64 = body.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": to_base64(row) if base64 else row}
        for i, row in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens}
    return VectorsResponse({"object": "list", "data": data, "model": name, "usage": usage})


@router.post("/v1/rerank")
async def cohere_rerank(body: CohereRerankRequest, service: ServiceDep) -> dict[str, Any]:
    name = service.resolve_model(body.model)
    query = check_text(body.query, "query", service.settings)
    documents = check_texts(body.texts(), "documents", service.settings)
    ranked, tokens, method = await rank(service, query, documents, body.top_n)
    results = []
    for index, score in ranked:
        row: dict[str, Any] = {"index": index, "relevance_score": score}
        if body.return_documents:
            row["document"] = {"text": documents[index]}
        results.append(row)
    return {
        "id": uuid.uuid4().hex,
        "model": name,
        "results": results,
        "usage": {"total_tokens": tokens},
        "meta": {"billed_units": {"search_units": 1}},
        "method": method,
    }


@router.get("/v1/models")
async def openai_models(service: ServiceDep) -> dict[str, Any]:
    return model_list(service.served_names())


# --- seed ------------------------------------------------------------------------------------------
@router.post("/similarity")
async def similarity(body: SimilarityRequest, service: ServiceDep) -> dict[str, float]:
    service.resolve_model(body.model)
    a, b = check_text(body.a, "a", service.settings), check_text(body.b, "b", service.settings)
    result = await service.embed([EmbedInput(text=a), EmbedInput(text=b)])
    return {"similarity": cosine(result.vectors[0], result.vectors[1])}


@router.post("/rerank")
async def seed_rerank(body: RerankRequest, service: ServiceDep) -> dict[str, Any]:
    service.resolve_model(body.model)
    query = check_text(body.query, "query", service.settings)
    candidates = check_texts(body.candidates, "candidates", service.settings)
    ranked, _, method = await rank(service, query, candidates, body.top_n)
    results = [{"index": i, "text": candidates[i], "score": score} for i, score in ranked]
    return {"results": results, "method": method}


async def rank(
    service: EmbeddingService, query: str, documents: list[str], top_n: int | None
) -> tuple[list[tuple[int, float]], int, str]:
    scores, tokens, method = await service.rerank(query, documents)
    ranked = sorted(enumerate(scores), key=lambda pair: pair[1], reverse=True)
    return ranked[:top_n] if top_n else ranked, tokens, method


# --- seed catch-alls: last -------------------------------------------------------------------------
@router.get("/{model}/{text:path}")
async def embed_one(model: str, text: str, service: ServiceDep, input_type: str | None = None) -> VectorsResponse:
    name = resolve_seed_model(service, model)
    role = parse_role(input_type)
    result = await service.embed([EmbedInput(text=check_text(text, "text", service.settings))], role)
    return VectorsResponse({"model": name, "embedding": result.vectors[0], "dim": result.vectors.shape[1]})


@router.post("/{model}")
async def embed_many(model: str, body: TextsRequest, service: ServiceDep) -> VectorsResponse:
    name = resolve_seed_model(service, model)
    texts = check_texts(body.texts, "texts", service.settings)
    inputs = [EmbedInput(text=t) for t in texts]
    result = await service.embed(inputs, body.input_type or InputType.document, body.dimensions)
    return VectorsResponse({"model": name, "embeddings": result.vectors, "dim": result.vectors.shape[1]})


def parse_role(input_type: str | None) -> InputType:
    """``?input_type=`` of the seed GET route (default: document), as the request bodies take it."""
    try:
        return parse_input_type(input_type) or InputType.document
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def resolve_seed_model(service: EmbeddingService, model: str) -> str:
    if model in RESERVED:  # e.g. POST /health, GET /v1/unknown: not a model name
        raise StarletteHTTPException(404, "Not Found")
    return service.resolve_model(model)

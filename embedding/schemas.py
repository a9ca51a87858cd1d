"""Request bodies: the seed's and OpenAI's / Cohere's / Jina's field names."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from embedding.engines.base import InputType

INPUT_TYPE_ALIASES = {
    "query": InputType.query,
    "search_query": InputType.query,
    "document": InputType.document,
    "search_document": InputType.document,
    "passage": InputType.document,
}


def parse_input_type(value: Any) -> Any:
    if value is None or isinstance(value, InputType):
        return value
    if isinstance(value, str) and value.lower() in INPUT_TYPE_ALIASES:
        return INPUT_TYPE_ALIASES[value.lower()]
    raise ValueError(f"input_type must be one of {', '.join(INPUT_TYPE_ALIASES)}")


class EmbeddingsRequest(BaseModel):
    """OpenAI ``POST /v1/embeddings`` (plus images and ``input_type``)."""

    input: Any = Field(description="A string, a list of strings, {type, data} objects, or a list mixing them.")
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    input_type: InputType | None = None
    user: str | None = None

    _input_type = field_validator("input_type", mode="before")(parse_input_type)


class TextsRequest(BaseModel):
    """Seed ``POST /{model}``."""

    texts: list[str]
    input_type: InputType | None = None
    dimensions: int | None = Field(None, ge=1)

    _input_type = field_validator("input_type", mode="before")(parse_input_type)


class SimilarityRequest(BaseModel):
    """Seed ``POST /similarity``."""

    a: str
    b: str
    model: str | None = None


class RerankRequest(BaseModel):
    """Seed ``POST /rerank``."""

    query: str
    candidates: list[str]
    top_n: int | None = Field(None, ge=1)
    model: str | None = None


class Document(BaseModel):
    text: str


class CohereRerankRequest(BaseModel):
    """``POST /v1/rerank`` in the Cohere / Jina shape."""

    query: str
    documents: list[str | Document]
    model: str | None = None
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = False

    def texts(self) -> list[str]:
        return [doc if isinstance(doc, str) else doc.text for doc in self.documents]

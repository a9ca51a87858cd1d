"""Request bodies of the seed routes (field names are the seed's contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QueryBody(BaseModel):
    query: str = Field(min_length=1)


class SessionBody(BaseModel):
    session_id: str = Field(min_length=1)


class SetModelBody(BaseModel):
    session_id: str = Field(min_length=1)
    model_name: str = Field(min_length=1)


class SelectBody(BaseModel):
    session_id: str = Field(min_length=1)
    choice: str = Field(min_length=1)


class RejectBody(BaseModel):
    session_id: str = Field(min_length=1)
    candidate: str = Field(min_length=1)
    reason: str | None = None


class MessageBody(BaseModel):
    session_id: str = Field(min_length=1)
    message: str = Field(min_length=1)

"""A prompt-optimisation session: what the user asked, every round of candidates, choices and chat."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Session:
    session_id: str
    original_query: str
    model_name: str | None = None
    round: int = 0  # candidate rounds stored so far
    selected_prompt: str | None = None
    candidates: list[str] = field(default_factory=list)  # the current round's
    rounds: list[dict[str, Any]] = field(default_factory=list)  # {"round", "source", "candidates"}
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"round", "candidate", "reason"}
    user_feedback: list[dict[str, Any]] = field(default_factory=list)  # {"round", "choice"}
    history: list[dict[str, str]] = field(default_factory=list)  # {"role", "content"}
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @classmethod
    def new(cls, query: str, model_name: str | None = None) -> Session:
        return cls(session_id=uuid.uuid4().hex, original_query=query, model_name=model_name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def shown(self) -> list[str]:
        """Every candidate this session has offered."""
        return [text for entry in self.rounds for text in entry["candidates"]]

    @property
    def rejected_texts(self) -> list[str]:
        return [entry["candidate"] for entry in self.rejected]

    def latest_user_message(self) -> str:
        for message in reversed(self.history):
            if message["role"] == "user":
                return message["content"]
        return self.original_query

    def add_round(self, candidates: list[str], source: str) -> int:
        """Store a round of candidates; returns its number (0-based: the round count before it)."""
        number = self.round
        self.rounds.append({"round": number, "source": source, "candidates": list(candidates)})
        self.candidates = list(candidates)
        self.round += 1
        return number

    def summary(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "round": self.round,
            "selected_prompt": self.selected_prompt,
            "original_query": self.original_query,
            "model_name": self.model_name,
            "updated_at": self.updated_at,
        }

    def detail(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "round": self.round,
            "original_query": self.original_query,
            "selected_prompt": self.selected_prompt,
            "model_name": self.model_name,
            "candidates": self.candidates,
            "user_feedback": self.user_feedback,
            "rejected": self.rejected_texts,
            "rejections": self.rejected,
            "rounds": self.rounds,
            "history": self.history,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

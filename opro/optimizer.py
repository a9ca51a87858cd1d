"""The prompt optimiser behind the seed's routes: sessions, rounds of candidates, choices and chat.

The OPRO loop over labelled examples (``/optimize``) is ``opro/loop.py``, run as jobs by ``opro/jobs.py``;
both keep their state in the same store.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from opro.backends.base import ChatBackend, Message, chat_models
from opro.candidates import CandidateGenerator
from opro.config import Settings
from opro.feedback import FeedbackLog
from opro.sessions import Session
from opro.store import SessionStore
from services.errors import BadRequest, NotFound, NotReady, UpstreamError

MODELS_TTL_S = 30.0


class Optimizer:
    def __init__(
        self,
        settings: Settings,
        chat: ChatBackend,
        generator: CandidateGenerator,
        store: SessionStore,
        feedback: FeedbackLog,
    ) -> None:
        self.settings = settings
        self.chat = chat
        self.generator = generator
        self.store = store
        self.feedback = feedback
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._models: tuple[float, list[str]] | None = None

    # --- models ------------------------------------------------------------------------------
    async def models(self, fresh: bool = False) -> list[str]:
        if fresh or self._models is None or time.monotonic() - self._models[0] > MODELS_TTL_S:
            self._models = (time.monotonic(), chat_models(await self.chat.models()))
        return self._models[1]

    async def model_for(self, session: Session | None) -> str | None:
        if session is not None and session.model_name:
            return session.model_name
        if self.settings.default_model:
            return self.settings.default_model
        models = await self.models()
        if not models:
            raise NotReady("the LLM backend serves no chat model")
        return models[0]

    async def set_model(self, session_id: str, model_name: str) -> dict[str, Any]:
        if model_name not in await self.models(fresh=True):
            raise BadRequest(f"model not available: {model_name}")
        async with self._locks[session_id]:
            session = await self.load(session_id)
            session.model_name = model_name
            await self.store.save(session)
        return {"session_id": session_id, "model_name": model_name}

    # --- sessions ----------------------------------------------------------------------------
    async def load(self, session_id: str) -> Session:
        session = await self.store.get(session_id)
        if session is None:
            raise NotFound("session not found")
        return session

    def check_text(self, name: str, text: str) -> str:
        text = text.strip()
        if not text:
            raise BadRequest(f"{name} must not be empty")
        if len(text) > self.settings.max_query_chars:
            raise BadRequest(f"{name} is longer than {self.settings.max_query_chars} characters")
        return text

    # --- candidate rounds --------------------------------------------------------------------
    async def _new_round(self, session: Session, base: str, source: str) -> dict[str, Any]:
        candidates = await self.generator.generate(
            base, model=await self.model_for(session), shown=session.shown, rejected=session.rejected
        )
        number = session.add_round(candidates, source)
        await self.store.save(session)
        return {"session_id": session.session_id, "round": number, "candidates": candidates}

    async def query(self, query: str) -> dict[str, Any]:
        session = Session.new(self.check_text("query", query))
        async with self._locks[session.session_id]:
            return await self._new_round(session, session.original_query, "query")

    async def query_from_message(self, session_id: str) -> dict[str, Any]:
        async with self._locks[session_id]:
            session = await self.load(session_id)
            return await self._new_round(session, session.latest_user_message(), "message")

    async def reject(self, session_id: str, candidate: str, reason: str | None) -> dict[str, Any]:
        candidate = self.check_text("candidate", candidate)
        async with self._locks[session_id]:
            session = await self.load(session_id)
            entry = {"round": max(session.round - 1, 0), "candidate": candidate, "reason": (reason or "").strip()}
            session.rejected.append(entry)
            await self.store.save(session)
            await self.feedback.record("reject", session_id=session_id, **entry)
            return await self._new_round(session, session.latest_user_message(), "reject")

    async def next(self, session_id: str) -> dict[str, Any]:
        async with self._locks[session_id]:
            session = await self.load(session_id)
            if session.round < self.settings.max_rounds:
                return await self._new_round(session, session.latest_user_message(), "next")
            prompt = session.selected_prompt or session.original_query
            answer = await self._answer([{"role": "user", "content": prompt}], session)
            session.history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            await self.store.save(session)
            return {"final": True, "answer": answer}

    # --- answers -----------------------------------------------------------------------------
    async def _answer(self, messages: list[Message], session: Session | None) -> str:
        model = await self.model_for(session)
        return await self.chat.chat(messages, model=model, max_tokens=self.settings.answer_max_tokens)

    async def select(self, session_id: str, choice: str) -> dict[str, Any]:
        choice = self.check_text("choice", choice)
        session = await self.load(session_id)
        answer = await self._answer([{"role": "user", "content": choice}], session)
        async with self._locks[session_id]:
            session = await self.load(session_id)
            feedback = {"round": max(session.round - 1, 0), "choice": choice}
            session.selected_prompt = choice
            session.user_feedback.append(feedback)
            session.history += [{"role": "user", "content": choice}, {"role": "assistant", "content": answer}]
            await self.store.save(session)
        await self.feedback.record(
            "select",
            session_id=session_id,
            original_query=session.original_query,
            candidates=session.candidates,
            answer=answer,
            model=session.model_name,
            **feedback,
        )
        return {"prompt": choice, "answer": answer}

    async def answer(self, query: str) -> dict[str, Any]:
        session = Session.new(self.check_text("query", query))
        async with self._locks[session.session_id]:
            answer = await self._answer([{"role": "user", "content": session.original_query}], session)
            session.history += [
                {"role": "user", "content": session.original_query},
                {"role": "assistant", "content": answer},
            ]
            round_ = await self._new_round(session, session.original_query, "answer")
        return {"session_id": session.session_id, "answer": answer, "candidates": round_["candidates"]}

    async def message(self, session_id: str, message: str) -> dict[str, Any]:
        message = self.check_text("message", message)
        async with self._locks[session_id]:
            session = await self.load(session_id)
            base = session.selected_prompt or session.original_query
            earlier = session.history[-self.settings.history_turns :] if self.settings.history_turns else []
            answer = await self._answer([*earlier, {"role": "user", "content": f"{base}\n\n{message}"}], session)
            session.history += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
            await self.store.save(session)
        return {"session_id": session_id, "answer": answer, "history": session.history}

    async def sessions(self) -> dict[str, Any]:
        return {"sessions": [session.summary() for session in await self.store.recent()]}

    async def session(self, session_id: str) -> dict[str, Any]:
        return (await self.load(session_id)).detail()

    async def check_ready(self) -> None:
        await self.store.check()
        try:
            await asyncio.wait_for(self.models(fresh=True), timeout=10)
        except asyncio.TimeoutError as exc:
            raise UpstreamError(f"the LLM at {self.settings.llm_url} did not answer /models in 10 s") from exc

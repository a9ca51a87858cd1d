"""One realtime session on its WebSocket: client events in, server events out, in OpenAI's order.

The socket is read all the time; the slow parts run as tasks: each committed turn's transcription
(``Turns``, the input audio's side), and the one response at a time. Speech that starts while a response runs cancels it
(``interrupt_response``). A client that goes away, or a session past its time, ends every task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket

from llm.models import ModelRegistry
from llm.realtime.conversation import Conversation, client_item
from llm.realtime.events import Event, EventError, beta_event, error_event, new_id
from llm.realtime.formats import AudioIn
from llm.realtime.response import ResponseRun, Spoken
from llm.realtime.session import SessionConfig
from llm.realtime.turns import Turns
from llm.siblings import Siblings
from services.errors import LingxiError


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        config: SessionConfig,
        beta: bool,
        models: ModelRegistry,
        siblings: Siblings,
        max_session_s: float,
        max_buffer_s: float,
    ) -> None:
        self.websocket = websocket
        self.config = config
        self.beta = beta
        self.models = models
        self.siblings = siblings
        self.max_session_s = max_session_s
        self.conversation = Conversation()
        self.spoken: dict[str, Spoken] = {}
        self.turns = Turns(self, max_buffer_s)
        self.response: ResponseRun | None = None
        self.response_task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.closed = False
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "session.update": self.session_update,
            "transcription_session.update": self.session_update,
            "input_audio_buffer.append": self.turns.append,
            "input_audio_buffer.commit": self.turns.commit,
            "input_audio_buffer.clear": self.turns.clear,
            "conversation.item.create": self.item_create,
            "conversation.item.delete": self.item_delete,
            "conversation.item.retrieve": self.item_retrieve,
            "conversation.item.truncate": self.item_truncate,
            "response.create": self.response_create,
            "response.cancel": self.response_cancel,
        }

    # --- the socket ------------------------------------------------------------------------------
    async def emit(self, event: Event) -> None:
        """Send a server event (renamed for a beta client); nothing once the client has gone."""
        event = {"event_id": new_id("event"), **event}
        wire = beta_event(event) if self.beta else event
        if wire is None or self.closed:
            return
        async with self.lock:
            try:
                await self.websocket.send_text(json.dumps(wire, ensure_ascii=False))
            except Exception:  # the client went away mid-send: the reading side ends the session
                self.closed = True

    async def serve(self) -> None:
        await self.turns.set_vad()
        await self.emit({"type": "session.created", "session": self.session_body()})
        try:
            await asyncio.wait_for(self.read(), self.max_session_s)
        except asyncio.TimeoutError:
            minutes = self.max_session_s / 60
            await self.emit(
                error_event(f"the session reached its maximum length of {minutes:g} minutes", code="session_expired")
            )
            await self.websocket.close(1000)
        finally:
            self.closed = True
            await self.end_tasks()

    async def read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
            await self.handle(raw)

    async def handle(self, raw: str) -> None:
        client_id = None
        try:
            event = json.loads(raw)
            if not isinstance(event, dict):
                raise EventError("an event must be a JSON object with a type", code="invalid_event")
            client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            handler = self.handlers.get(event.get("type"))  # type: ignore[arg-type]
            if handler is None:
                raise EventError(f"unknown event type {event.get('type')!r}", code="invalid_event", param="type")
            await handler(event)
        except json.JSONDecodeError:
            await self.emit(error_event("the event is not valid JSON", code="invalid_json"))
        except EventError as exc:
            await self.emit(error_event(exc.message, code=exc.code, param=exc.param, client_event_id=client_id))
        except LingxiError as exc:
            await self.emit(
                error_event(exc.message, code=exc.error_type, kind=exc.error_type, client_event_id=client_id)
            )

    async def end_tasks(self) -> None:
        tasks = self.turns.end()
        if self.response_task is not None:
            self.response_task.cancel()
            tasks.append(self.response_task)
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the session -----------------------------------------------------------------------------
    def session_body(self) -> dict[str, Any]:
        return self.config.beta() if self.beta else self.config.ga()

    async def session_update(self, event: dict[str, Any]) -> None:
        before, heard_as = self.config.turn_detection, self.config.input_format
        self.config = self.searchable(self.config.updated(event.get("session"), beta=self.beta))
        if self.config.input_format != heard_as:
            self.turns.decode = AudioIn(self.config.input_format)
        if self.config.turn_detection != before:
            await self.turns.detection_changed()
        kind = "transcription_session.updated" if event["type"].startswith("transcription") else "session.updated"
        await self.emit({"type": kind, "session": self.session_body()})

    def searchable(self, config: SessionConfig) -> SessionConfig:
        """``config``, once it is known that its web search, if it asks for one, can be served."""
        if config.web_search_options is not None:
            try:
                self.siblings.websearch.base_url()
            except LingxiError as exc:
                raise EventError(exc.message, param="session.web_search_options") from None
        return config

    # --- the conversation ------------------------------------------------------------------------
    async def item_create(self, event: dict[str, Any]) -> None:
        item = client_item(event.get("item"))
        if item["id"] in self.conversation.items:
            raise EventError(f"item {item['id']!r} is already in the conversation", param="item.id")
        previous = self.conversation.add(item, event.get("previous_item_id"))
        await self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    async def item_delete(self, event: dict[str, Any]) -> None:
        self.conversation.delete(event.get("item_id"))
        await self.emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def item_retrieve(self, event: dict[str, Any]) -> None:
        await self.emit({"type": "conversation.item.retrieved", "item": self.conversation.get(event.get("item_id"))})

    async def item_truncate(self, event: dict[str, Any]) -> None:
        """Cut an assistant audio item's transcript to what was heard: ``audio_end_ms`` of its audio."""
        item = self.conversation.get(event.get("item_id"))
        spoken = self.spoken.get(item["id"])
        if item.get("role") != "assistant" or spoken is None:
            raise EventError("only an assistant message with audio can be truncated", param="item_id")
        end_ms = event.get("audio_end_ms")
        if isinstance(end_ms, bool) or not isinstance(end_ms, int) or not 0 <= end_ms <= spoken.audio_ms:
            raise EventError(
                f"audio_end_ms must be between 0 and the item's {spoken.audio_ms} ms of audio", param="audio_end_ms"
            )
        if event.get("content_index", 0) != 0:
            raise EventError("the item has one content part: content_index 0", param="content_index")
        item["content"] = [{"type": "output_audio", "transcript": spoken.heard(end_ms)}]
        self.spoken[item["id"]] = Spoken([c for c in spoken.clauses if c[1] <= end_ms])
        await self.emit(
            {"type": "conversation.item.truncated", "item_id": item["id"], "content_index": 0, "audio_end_ms": end_ms}
        )

    # --- responses -------------------------------------------------------------------------------
    async def response_create(self, event: dict[str, Any]) -> None:
        if self.config.intent != "realtime":
            raise EventError("a transcription session does not answer", param="type")
        if self.response_task is not None:
            raise EventError(
                "the conversation already has an active response; cancel it or wait for response.done",
                code="conversation_already_has_active_response",
            )
        overrides = event.get("response") or {}
        config = self.config
        if overrides:
            fields = {k: v for k, v in overrides.items() if k not in ("type", "conversation", "metadata", "input")}
            config = self.searchable(self.config.updated(fields, beta=self.beta))
        await self.start_response(config)

    async def start_response(self, config: SessionConfig) -> None:
        run = ResponseRun(
            config=config,
            conversation=self.conversation,
            models=self.models,
            siblings=self.siblings,
            emit=self.emit,
            spoken=self.spoken,
            waits=self.turns.transcribed,
        )
        self.response = run
        await run.start()
        task = asyncio.create_task(run.run())
        self.response_task = task

        def ended(_: asyncio.Task[None]) -> None:
            if self.response_task is task:
                self.response, self.response_task = None, None

        task.add_done_callback(ended)

    async def response_cancel(self, event: dict[str, Any]) -> None:
        if self.response_task is None:
            raise EventError("there is no response to cancel", code="response_cancel_not_active")
        await self.cancel_response("client_cancelled")

    async def cancel_response(self, reason: str) -> None:
        run, task = self.response, self.response_task
        if run is None or task is None:
            return
        run.cancel_reason = reason
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await run.finish("cancelled", {"type": "cancelled", "reason": reason})  # when it was cancelled before it began

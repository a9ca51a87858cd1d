"""A response's function calls, sent as the engine streams them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llm.openai_format import first_choice
from llm.realtime.events import function_call_item, new_id

if TYPE_CHECKING:
    from llm.realtime.response import ResponseRun


class Calls:
    """The model's function calls as the engine streams them (OpenAI's ``delta.tool_calls`` pieces): each
    call a ``function_call`` item, its arguments sent as ``response.function_call_arguments.delta`` piece
    by piece, then ``.done``. An engine that writes a call whole (the embedded one: it reads a call only
    once its JSON is complete) gives one delta. Pieces that come while a message is being written wait
    for it to end, so that the output items follow one another."""

    def __init__(self, run: ResponseRun) -> None:
        self.run = run
        self.pieces: list[dict[str, Any]] = []  # received, not sent yet
        self.item: dict[str, Any] | None = None  # the call being written
        self.index: int | None = None  # its index among the engine's calls

    def feed(self, chunk: dict[str, Any]) -> None:
        self.pieces.extend((first_choice(chunk).get("delta") or {}).get("tool_calls") or [])

    async def send(self) -> None:
        pieces, self.pieces = self.pieces, []
        for piece in pieces:
            index = int(piece.get("index", 0))
            function = piece.get("function") or {}
            if self.item is None or index != self.index:
                await self.close("completed")
                await self.open(piece.get("id"), str(function.get("name") or ""))
                self.index = index
            elif function.get("name"):
                self.item["name"] += function["name"]
            arguments = function.get("arguments") or ""
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            if arguments:
                await self.delta(arguments)

    async def open(self, call_id: str | None, name: str) -> None:
        run = self.run
        self.item = item = function_call_item(call_id or new_id("call"), name, "", status="in_progress")
        run.output.append(item)
        previous = run.conversation.add(item)
        added = {"type": "response.output_item.added", "response_id": run.id, "output_index": len(run.output) - 1}
        await run.emit({**added, "item": dict(item)})
        await run.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": dict(item)})

    def where(self) -> dict[str, Any]:
        assert self.item is not None
        output_index = self.run.output.index(self.item)
        return {"response_id": self.run.id, "item_id": self.item["id"], "output_index": output_index,
                "call_id": self.item["call_id"]}  # fmt: skip

    async def delta(self, arguments: str) -> None:
        assert self.item is not None
        self.item["arguments"] += arguments
        await self.run.emit({"type": "response.function_call_arguments.delta", **self.where(), "delta": arguments})

    async def close(self, status: str) -> None:
        """End the call being written: ``completed``, or ``incomplete`` when the response was cancelled."""
        item, run = self.item, self.run
        if item is None:
            return
        where = self.where()
        if status == "completed":
            if not item["arguments"]:
                await self.delta("{}")
            done = {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]}
            await run.emit({**done, "name": item["name"]})
        item["status"] = status
        item_done = {"type": "response.output_item.done", "response_id": run.id, "output_index": where["output_index"]}
        await run.emit({**item_done, "item": item})
        await run.emit({"type": "conversation.item.done", "item": item})
        self.item, self.index = None, None

"""What the asr routes share: their typed dependencies and form fields, and a stream's ticket release."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from asr.diarize import Diarizer
from asr.pipeline import Ticket, Transcriber
from services.app import app_state

TranscriberDep = Annotated[Transcriber, app_state("transcriber")]
DiarizerDep = Annotated[Diarizer, app_state("diarizer")]
SpeakerCount = Annotated[int | None, Form()]  # checked by SpeakerOptions.parse (400)


def with_release(response: StreamingResponse, ticket: Ticket) -> StreamingResponse:
    """Release the stream's ticket even when the client leaves before the stream starts."""
    response.background = BackgroundTask(ticket.release)
    return response

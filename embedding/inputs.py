"""Turn what clients send into ``EmbedInput``s: texts checked, images fetched/decoded/resized.

OpenAI ``input``: a string, a list of strings, ``{"type": "text"|"image", "data": ...}`` or a list
mixing them. Image data: an http(s) URL (through the safe fetcher), a ``data:`` URL, or bare base64.
Every problem is a 4xx that names the input (``input[3]: ...``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from embedding.config import Settings
from embedding.engines.base import EmbedInput
from services.errors import BadRequest, LingxiError, PayloadTooLarge
from services.fetch import SafeFetcher
from services.media import ImageLimits, decode_image

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
INPUT_SHAPE = 'a string or an object {"type": "text" | "image", "data": "..."}'


def check_text(text: Any, where: str, settings: Settings) -> str:
    if not isinstance(text, str):
        raise BadRequest(f"{where} must be a string, not {type(text).__name__}")
    if not text.strip():
        raise BadRequest(f"{where} is an empty string")
    if len(text) > settings.max_chars_per_input:
        raise PayloadTooLarge(f"{where} is {len(text)} characters; the limit is {settings.max_chars_per_input}")
    return text


def check_texts(texts: list[Any], where: str, settings: Settings) -> list[str]:
    if not texts:
        raise BadRequest(f"{where} is empty; send at least one text")
    if len(texts) > settings.max_inputs_per_request:
        raise PayloadTooLarge(f"{where} has {len(texts)} items; the limit is {settings.max_inputs_per_request}")
    return [check_text(text, f"{where}[{i}]", settings) for i, text in enumerate(texts)]


def openai_items(value: Any) -> list[Any]:
    """The items of OpenAI's ``input`` (a single item becomes a list of one)."""
    if isinstance(value, (str, dict)):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value) or any(isinstance(v, list) for v in value):
            raise BadRequest("input as token ids is not supported; send the text itself")
        return value
    raise BadRequest(f"input must be {INPUT_SHAPE}, or a list of them")


async def parse_openai_input(
    value: Any, settings: Settings, fetcher: SafeFetcher, *, allow_images: bool
) -> list[EmbedInput]:
    """The inputs, images decoded; images are refused up front when the model embeds text only."""
    items = openai_items(value)
    if not items:
        raise BadRequest("input is empty; send at least one text or image")
    if len(items) > settings.max_inputs_per_request:
        raise PayloadTooLarge(f"input has {len(items)} items; the limit is {settings.max_inputs_per_request}")
    parsed: list[EmbedInput | str] = []  # image data stays a string until all texts are checked
    for i, item in enumerate(items):
        where = f"input[{i}]" if isinstance(value, list) else "input"
        if isinstance(item, str):
            parsed.append(EmbedInput(text=check_text(item, where, settings)))
            continue
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be {INPUT_SHAPE}, not {type(item).__name__}")
        kind, data = item.get("type"), item.get("data")
        if kind == "text":
            parsed.append(EmbedInput(text=check_text(data, f"{where}.data", settings)))
        elif kind == "image":
            if not allow_images:
                raise BadRequest(f"{where}: the served model embeds text only; it cannot embed images")
            if not isinstance(data, str) or not data.strip():
                raise BadRequest(f"{where}.data must be an image URL, a data: URL or base64")
            parsed.append(data)
        else:
            raise BadRequest(f"{where}.type must be 'text' or 'image', not {kind!r}")
    ready = [item for item in parsed if isinstance(item, EmbedInput)]
    if len(ready) == len(parsed):
        return ready  # texts only: nothing to fetch
    limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    box = (settings.max_image_width, settings.max_image_height)

    async def resolve(i: int, item: EmbedInput | str) -> EmbedInput:
        if isinstance(item, EmbedInput):
            return item
        where = f"input[{i}]" if isinstance(value, list) else "input"
        try:
            return EmbedInput(image=await load_image(item, limits, box, fetcher))
        except LingxiError as exc:
            exc.message = f"{where}: {exc.message}"
            raise

    return list(await asyncio.gather(*(resolve(i, item) for i, item in enumerate(parsed))))


async def load_image(data: str, limits: ImageLimits, box: tuple[int, int], fetcher: SafeFetcher) -> Any:
    data = data.strip()
    if URL_SCHEME.match(data):
        raw = (await fetcher.fetch(data)).content
    elif data.startswith("data:"):
        raw = decode_data_url(data)
    else:
        raw = decode_base64(data, "image data is neither an http(s) URL, a data: URL nor valid base64")
    if len(raw) > limits.max_bytes:
        raise PayloadTooLarge(f"the image is {len(raw)} bytes; the limit is {limits.max_bytes}")
    return await asyncio.to_thread(decode_and_fit, raw, limits, box)


def decode_and_fit(raw: bytes, limits: ImageLimits, box: tuple[int, int]) -> Any:
    image = decode_image(raw, limits)
    if image.width > box[0] or image.height > box[1]:
        image.thumbnail(box)
    return image


def decode_data_url(url: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma:
        raise BadRequest("malformed data URL: no ',' before the data")
    if not header.endswith(";base64"):
        raise BadRequest("malformed data URL: only base64 data URLs (data:image/png;base64,...) are accepted")
    media_type = header[5:-7].lower()
    if media_type and not media_type.startswith("image/"):
        raise BadRequest(f"the data URL holds {media_type}, not an image")
    return decode_base64(payload, "malformed data URL: the data is not valid base64")


def decode_base64(text: str, problem: str) -> bytes:
    compact = re.sub(r"\s+", "", text)
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(problem) from exc
    if not raw:
        raise BadRequest(problem)
    return raw

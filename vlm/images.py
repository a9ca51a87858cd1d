"""Where a request's image comes from (URL, data: URL, base64, upload) and its decoding under limits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from services.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from services.fetch import SafeFetcher
from services.media import ImageLimits, decode_image

DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.DOTALL)


def decode_base64(text: str, what: str, max_bytes: int) -> bytes:
    cleaned = re.sub(r"\s+", "", text)
    if len(cleaned) * 3 // 4 > max_bytes:
        raise PayloadTooLarge(f"the {what} is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"the {what} is not valid base64") from exc


def decode_data_url(url: str, max_bytes: int) -> bytes:
    match = DATA_URL.match(url.strip())
    if not match:
        raise BadRequest("image_url is a malformed data: URL (expected data:image/png;base64,...)")
    mime = (match["mime"] or "").lower()
    if mime and not mime.startswith("image/") and mime != "application/octet-stream":
        raise UnsupportedMediaType(f"image_url is a data: URL of {mime}, not an image")
    if ";base64" not in match["params"].lower():
        raise BadRequest("only base64 data: URLs are accepted (data:image/...;base64,...)")
    return decode_base64(match["data"], "image_url data: URL", max_bytes)


class ImageSource:
    """Turns the request's image fields into a decoded RGB image."""

    def __init__(self, fetcher: SafeFetcher, limits: ImageLimits) -> None:
        self.fetcher = fetcher
        self.limits = limits

    async def bytes_from(self, image_url: str | None, image_base64: str | None, upload: bytes | None) -> bytes:
        given = [
            name
            for name, value in (("image_url", image_url), ("image_base64", image_base64), ("image", upload))
            if value is not None
        ]
        if not given:
            raise BadRequest("no image: send image_url (http(s) or data: URL), image_base64, or upload 'image'")
        if len(given) > 1:
            raise BadRequest(f"send one image, not {' and '.join(given)}")
        if upload is not None:
            return upload
        if image_base64 is not None:
            if image_base64.lstrip().startswith("data:"):
                return decode_data_url(image_base64, self.limits.max_bytes)
            return decode_base64(image_base64, "image_base64", self.limits.max_bytes)
        assert image_url is not None
        if image_url.lstrip().lower().startswith("data:"):
            return decode_data_url(image_url, self.limits.max_bytes)
        fetched = await self.fetcher.fetch(image_url)
        return fetched.content

    async def load(self, image_url: str | None, image_base64: str | None, upload: bytes | None) -> Any:
        data = await self.bytes_from(image_url, image_base64, upload)
        return await asyncio.to_thread(decode_image, data, self.limits)

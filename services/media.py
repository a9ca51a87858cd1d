"""Media helpers: any common audio → mono 16 kHz float32 PCM, any common image → RGB Pillow image.

Limits are explicit: bytes (413), duration (413), pixels (413); not a recognised format → 415;
recognised but corrupt → 400.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from services.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int = 100 * 1024 * 1024
    max_seconds: float = 3 * 3600.0


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int | None = None  # downscale so that the longer side is at most this


def check_size(data: bytes, max_bytes: int, what: str) -> None:
    if not data:
        raise BadRequest(f"the {what} is empty")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the {what} is {len(data)} bytes; the limit is {max_bytes}")


def decode_audio(data: bytes, limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """Decode wav/flac/mp3/ogg/opus/webm/m4a/... at any rate and channel count to mono 16 kHz float32."""
    import av  # PyAV bundles FFmpeg's decoders

    check_size(data, limits.max_bytes, "audio file")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMediaType("the upload is not a recognised audio file") from exc
    with container:
        if not container.streams.audio:
            raise UnsupportedMediaType("the upload has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        max_samples = int(limits.max_seconds * SAMPLE_RATE)
        pieces: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    piece = out.to_ndarray().reshape(-1)
                    total += piece.size
                    if total > max_samples:
                        raise PayloadTooLarge(f"the audio is longer than {limits.max_seconds:.0f} seconds")
                    pieces.append(piece)
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as exc:
            raise BadRequest("the audio file is corrupt or truncated") from exc
    if not pieces:
        raise BadRequest("the audio file contains no samples")
    pcm = np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)
    if not np.isfinite(pcm).all():  # a float WAV may carry NaN or infinity; no model can hear those
        raise BadRequest("the audio file has samples that are not finite numbers")
    return pcm


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()):  # -> PIL.Image.Image
    """Decode an image to RGB: first frame of animations, CMYK/palette/alpha flattened, downscaled."""
    from PIL import Image, UnidentifiedImageError

    check_size(data, limits.max_bytes, "image")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaType("the data is not a recognised image (png, jpeg, gif, webp, bmp, tiff)") from exc
    except (OSError, ValueError) as exc:
        raise BadRequest("the image could not be read") from exc
    width, height = image.size
    if width * height > limits.max_pixels:
        raise PayloadTooLarge(f"the image is {width}x{height}; the limit is {limits.max_pixels} pixels")
    try:
        image.seek(0)
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadRequest("the image is corrupt or truncated") from exc
    image = to_rgb(image)
    if limits.max_side and max(image.size) > limits.max_side:
        image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    return image


def to_rgb(image):  # PIL.Image.Image -> PIL.Image.Image
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")

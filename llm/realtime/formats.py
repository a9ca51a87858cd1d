"""The session's audio formats: PCM16 24 kHz (``audio/pcm``), and G.711 μ-law (``audio/pcmu``) and
A-law (``audio/pcma``) at 8 kHz, as telephony sends them. Inside, a session's audio is PCM16 24 kHz:
G.711 input is decoded and resampled to it as it is appended, output is resampled and encoded as it
is sent. FFmpeg's G.711 codecs and resampler, through PyAV, do the work."""

from __future__ import annotations

from typing import Any, cast

import av
import numpy as np

from llm.realtime.events import BETA_FORMATS as BETA_NAMES
from llm.realtime.events import EventError

RATE = 24_000  # the Realtime API's PCM16: 24 kHz mono little-endian
G711_RATE = 8_000
FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
BETA_FORMATS = {beta: ga for ga, beta in BETA_NAMES.items()}  # the beta names: pcm16, g711_ulaw, g711_alaw
CODECS = {"audio/pcmu": "pcm_mulaw", "audio/pcma": "pcm_alaw"}  # FFmpeg's names
NOISE_REDUCTIONS = ("near_field", "far_field")


def audio_format(value: Any, where: str) -> str:
    """GA's ``{type, rate}``: ``audio/pcm`` at 24 kHz, or G.711 ``audio/pcmu`` / ``audio/pcma`` (8 kHz)."""
    if not isinstance(value, dict):
        raise EventError(f"{where} must be an object", param=where)
    kind = value.get("type", "audio/pcm")
    if kind not in FORMATS or (kind == "audio/pcm" and value.get("rate", RATE) != RATE):
        raise EventError(
            f"{where} must be {{type: 'audio/pcm', rate: 24000}}, {{type: 'audio/pcmu'}} or {{type: 'audio/pcma'}}",
            param=where,
        )
    return str(kind)


def format_object(fmt: str) -> dict[str, Any]:
    return {"type": fmt, "rate": RATE} if fmt == "audio/pcm" else {"type": fmt}


def beta_format(fmt: str) -> str:
    return BETA_NAMES[fmt]


def noise_reduction(value: Any, where: str) -> str | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in NOISE_REDUCTIONS:
        raise EventError(
            f"{where} must be null or {{type: 'near_field'}} or {{type: 'far_field'}}", param=f"{where}.type"
        )
    return str(kind)


def bytes_per_ms(fmt: str) -> int:
    """How many bytes a millisecond of audio takes in ``fmt`` (one byte a sample for G.711)."""
    return G711_RATE // 1000 if fmt in CODECS else RATE * 2 // 1000


def frame_of(pcm: bytes, rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


def pcm_of(frames: list[Any]) -> bytes:
    return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in frames)


def g711_decode(data: bytes, fmt: str) -> bytes:
    """G.711 bytes → PCM16 at 8 kHz."""
    decoder = cast(av.AudioCodecContext, av.CodecContext.create(CODECS[fmt], "r"))
    decoder.sample_rate, decoder.layout = G711_RATE, "mono"
    return pcm_of(list(decoder.decode(av.Packet(data)))) if data else b""


def g711_encode(pcm: bytes, fmt: str) -> bytes:
    """PCM16 at 8 kHz → G.711 bytes."""
    if len(pcm) < 2:
        return b""
    encoder = cast(av.AudioCodecContext, av.CodecContext.create(CODECS[fmt], "w"))
    encoder.sample_rate, encoder.layout, encoder.format = G711_RATE, "mono", "s16"
    packets = encoder.encode(frame_of(pcm[: len(pcm) - len(pcm) % 2], G711_RATE)) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)


class AudioIn:
    """The client's audio in its format → PCM16 24 kHz, continuous across appends."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE) if fmt in CODECS else None

    def __call__(self, data: bytes) -> bytes:
        if self.resampler is None or not data:
            return data
        return pcm_of(self.resampler.resample(frame_of(g711_decode(data, self.fmt), G711_RATE)))


def audio_out(pcm: bytes, fmt: str) -> bytes:
    """A stretch of PCM16 24 kHz speech (one clause: it ends in silence) in the client's format."""
    if fmt not in CODECS or len(pcm) < 2:
        return pcm
    resampler = av.AudioResampler(format="s16", layout="mono", rate=G711_RATE)
    frames = resampler.resample(frame_of(pcm[: len(pcm) - len(pcm) % 2], RATE)) + resampler.resample(None)
    return g711_encode(pcm_of(frames), fmt)

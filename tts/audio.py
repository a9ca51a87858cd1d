"""Audio helpers: WAV framing (whole and streamed), joining with pauses, resampling, tempo, other
containers (flac, mp3, opus, aac through PyAV's bundled FFmpeg), and the two measurements the espeak
engine adapts to: median F0 and speaking rate."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from services import pitch
from services.errors import BadRequest, UpstreamError


@dataclass(frozen=True)
class Audio:
    """Mono PCM16 samples at ``sample_rate``."""

    samples: np.ndarray  # int16, 1-D
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


MIN_VOICED_FRAMES = 3  # 30 ms of voiced speech: fewer say nothing about a voice's pitch
STREAM_SIZE = 0xFFFFFFFF  # RIFF/data size of a WAV whose length is not known yet (streamed)


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """A 44-byte RIFF/WAVE PCM16 mono header; ``data_bytes=None`` for a stream of unknown length."""
    data_size = STREAM_SIZE if data_bytes is None else data_bytes
    riff_size = STREAM_SIZE if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def to_wav(audio: Audio) -> bytes:
    pcm = pcm_bytes(audio)
    return wav_header(audio.sample_rate, len(pcm)) + pcm


def pcm_bytes(audio: Audio) -> bytes:
    return np.ascontiguousarray(audio.samples, dtype="<i2").tobytes()


def read_wav(data: bytes) -> Audio:
    """PCM16 WAV (mono or multi-channel; sizes may be bogus, as espeak-ng and streams write them)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos, sample_rate, channels, bits = 12, 0, 1, 16
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt, channels, sample_rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if fmt not in (1, 0xFFFE) or bits != 16:
                raise ValueError("only PCM16 WAV is read here")
        elif chunk == b"data":
            end = len(data) if size >= STREAM_SIZE - 0x10000 or body + size > len(data) else body + size
            raw = data[body:end]
            samples = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], dtype="<i2")
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
            if not sample_rate:
                raise ValueError("WAV data before its fmt chunk")
            return Audio(samples.astype(np.int16), sample_rate)
        pos = body + size + (size & 1)
    raise ValueError("WAV without a data chunk")


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.int16)


def resample(audio: Audio, rate: int) -> Audio:
    if audio.sample_rate == rate or audio.samples.size == 0:
        return Audio(audio.samples, rate)
    n_out = int(round(audio.samples.size * rate / audio.sample_rate))
    x_old = np.arange(audio.samples.size) / audio.sample_rate
    x_new = np.arange(n_out) / rate
    resampled = np.interp(x_new, x_old, audio.samples.astype(np.float32))
    return Audio(np.clip(resampled, -32768, 32767).astype(np.int16), rate)


def change_tempo(audio: Audio, factor: float) -> Audio:
    """Speed speech up (factor > 1) or slow it down without changing pitch (sox ``tempo``)."""
    if abs(factor - 1.0) < 1e-3 or audio.samples.size == 0:
        return audio
    sox = shutil.which("sox")
    if sox is None:
        raise UpstreamError("changing the speed needs sox (apt-get install sox)")
    command = [sox, "-t", "wav", "-", "-t", "wav", "-", "tempo", "-s", f"{factor:.4f}"]
    done = subprocess.run(command, input=to_wav(audio), capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise UpstreamError(f"sox tempo failed: {done.stderr.decode(errors='replace')[:200]}")
    return read_wav(done.stdout)


# --- other containers --------------------------------------------------------------------------

# response_format → (container, encoder, sample format of the frames handed to it, samples per frame)
ENCODERS = {
    "flac": ("flac", "flac", "s16", 4608),
    "mp3": ("mp3", "libmp3lame", "s16p", 1152),
    "opus": ("ogg", "libopus", "s16", 0),  # 0: 20 ms at the rate opus is given
    "aac": ("adts", "aac", "s16", 1024),  # PyAV converts to the encoder's float planar format
}
OPUS_RATES = (48_000, 24_000, 16_000, 12_000, 8_000)


def available_formats() -> list[str]:
    """Response formats this installation can write: wav and pcm always, the rest when PyAV can."""
    import av

    formats = ["wav", "pcm"]
    for name, (_, codec, _, _) in ENCODERS.items():
        try:
            av.codec.Codec(codec, "w")
        except (av.error.FFmpegError, ValueError):  # pragma: no cover - depends on the FFmpeg build
            continue
        formats.append(name)
    return formats


def encode(audio: Audio, response_format: str) -> bytes:
    if response_format == "wav":
        return to_wav(audio)
    if response_format == "pcm":
        return pcm_bytes(audio)
    if response_format not in ENCODERS:
        raise BadRequest(f"unknown response_format {response_format!r}")
    import av

    container_format, codec, sample_format, frame_size = ENCODERS[response_format]
    if response_format == "opus":
        rate = min(OPUS_RATES, key=lambda r: (r < audio.sample_rate, abs(r - audio.sample_rate)))
        audio = resample(audio, rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=audio.sample_rate)
        stream.layout = "mono"
        frame_size = frame_size or audio.sample_rate // 50
        for start in range(0, audio.samples.size, frame_size):
            piece = audio.samples[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format=sample_format, layout="mono")
            frame.sample_rate = audio.sample_rate
            frame.time_base = Fraction(1, audio.sample_rate)
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


# --- measurements of a reference recording -------------------------------------------------------


def frame_signal(samples: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if samples.size < frame:
        return np.zeros((0, frame), dtype=np.float32)
    count = 1 + (samples.size - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    return samples[index]


def median_f0(samples: np.ndarray, sample_rate: int) -> float | None:
    """Median fundamental frequency (Hz) of the voiced frames (``services.pitch``, YIN every 10 ms);
    None when fewer than ``MIN_VOICED_FRAMES`` are voiced."""
    semitones = pitch.track(samples, sample_rate)  # YIN does not depend on the samples' scale
    return pitch.to_hertz(float(np.median(semitones))) if semitones.size >= MIN_VOICED_FRAMES else None


def syllable_rate(samples: np.ndarray, sample_rate: int) -> float | None:
    """Syllable nuclei per second of speech: peaks of the smoothed loudness envelope."""
    x = samples.astype(np.float32)
    hop = int(0.01 * sample_rate)
    frames = frame_signal(x, int(0.025 * sample_rate), hop)
    if len(frames) < 10:
        return None
    envelope = np.sqrt((frames**2).mean(axis=1))
    kernel = np.hanning(5)
    envelope = np.convolve(envelope, kernel / kernel.sum(), mode="same")
    threshold = 0.15 * envelope.max()
    active = envelope > threshold
    seconds = active.sum() * hop / sample_rate
    if seconds < 0.3:
        return None
    # a nucleus is a local maximum that rises at least 30 % above the dip since the previous one
    peaks, dip, rising = 0, envelope[0], False
    for i in range(1, len(envelope)):
        value = envelope[i]
        if value < dip:
            dip = value
        if not rising and active[i] and value > 1.3 * dip + 1e-6:
            rising = True
        if rising and value < envelope[i - 1]:
            peaks += 1
            rising, dip = False, value
    return peaks / seconds

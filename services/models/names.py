"""What users may name: hub repo ids, files inside a repo, and Ollama's names for GGUF models.

A repo id is ``owner/name`` of letters, digits, ``.``, ``_`` and ``-``: never a URL, never a path that
climbs out of the models directory. Ollama names are ``hf.co/{owner}/{repo}[:{quant}]`` (or
``huggingface.co/…``; on ModelScope, when it is a source, the same id) and a few familiar names mapped
to their official GGUF repos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95})"
REPO_ID = re.compile(rf"^{PART}/{PART}$")
QUANT = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
HF_PREFIXES = ("hf.co/", "huggingface.co/")
DEFAULT_QUANT = "Q4_K_M"  # what Ollama picks for an hf.co name without a tag

# familiar Ollama names → (Hugging Face repo, ModelScope repo, quantisation)
FAMILIAR: dict[str, tuple[str, str, str]] = {
    "qwen2.5:0.5b": ("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "q4_k_m"),
    "qwen2.5:1.5b": ("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "q4_k_m"),
    "qwen2.5:3b": ("Qwen/Qwen2.5-3B-Instruct-GGUF", "Qwen/Qwen2.5-3B-Instruct-GGUF", "q4_k_m"),
    "qwen2.5:7b": ("Qwen/Qwen2.5-7B-Instruct-GGUF", "Qwen/Qwen2.5-7B-Instruct-GGUF", "q4_k_m"),
    "qwen3:0.6b": ("Qwen/Qwen3-0.6B-GGUF", "Qwen/Qwen3-0.6B-GGUF", "Q8_0"),
    "qwen3:1.7b": ("Qwen/Qwen3-1.7B-GGUF", "Qwen/Qwen3-1.7B-GGUF", "Q8_0"),
    "qwen3:4b": ("Qwen/Qwen3-4B-GGUF", "Qwen/Qwen3-4B-GGUF", "Q4_K_M"),
    "qwen3:8b": ("Qwen/Qwen3-8B-GGUF", "Qwen/Qwen3-8B-GGUF", "Q4_K_M"),
}


class BadName(ValueError):
    """A name that is not a repo id, a repo file, or an Ollama model name lingxi can pull."""


def repo_id(text: str) -> str:
    """``text`` when it is a plain ``owner/name`` id (no URL, no ``..``); else ``BadName``."""
    if not REPO_ID.fullmatch(text) or ".." in text:
        raise BadName(f"{text!r} is not a model id of the form owner/name (letters, digits, '.', '_', '-')")
    return text


def local_name(text: str) -> str:
    """A directory under the models directory: ``owner/repo`` or a plain name such as ``SenseVoiceSmall``."""
    parts = text.split("/")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(PART, p) for p in parts) or ".." in text:
        raise BadName(f"{text!r} is not a model directory name (letters, digits, '.', '_', '-', at most 3 levels)")
    return text


def repo_file(path: str) -> PurePosixPath:
    """A file path a hub listed, checked to stay inside the repo's directory."""
    pure = PurePosixPath(path)
    unsafe = "\\" in path or "\x00" in path or pure.is_absolute() or any(p in ("", ".", "..") for p in pure.parts)
    if not path or unsafe:
        raise BadName(f"the hub listed a file with an unsafe path: {path!r}")
    return pure


@dataclass(frozen=True)
class GgufName:
    """An Ollama model name resolved to the GGUF repo (per hub) and quantisation it stands for."""

    name: str  # as the client sent it, and as it is served afterwards
    hf_repo: str
    modelscope_repo: str
    quant: str


def ollama_name(text: str) -> GgufName:
    """``hf.co/{owner}/{repo}[:{quant}]``, ``huggingface.co/…`` or a familiar name; else ``BadName``."""
    name = text.strip()
    if name in FAMILIAR:
        hf, modelscope, quant = FAMILIAR[name]
        return GgufName(name, hf, modelscope, quant)
    lowered = name.lower()
    for prefix in HF_PREFIXES:
        if lowered.startswith(prefix):
            repo, _, quant = name[len(prefix) :].partition(":")
            if quant and not QUANT.fullmatch(quant):
                raise BadName(f"{quant!r} is not a quantisation tag (e.g. Q4_K_M)")
            quant = "" if quant.lower() == "latest" else quant
            # ModelScope carries many GGUF repos under the same id (Qwen's, unsloth's ...)
            return GgufName(name, repo_id(repo), repo, quant or DEFAULT_QUANT)
    raise BadName(
        f"lingxi pulls GGUF models from Hugging Face as hf.co/{{owner}}/{{repo}}[:{{quant}}] "
        f"or one of {', '.join(FAMILIAR)}; {name!r} is neither"
    )

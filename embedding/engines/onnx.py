"""The forward pass of sentence-transformers models and cross-encoders on the CPU: exported to ONNX once,
run by OpenVINO or ONNX Runtime.

The model is loaded by sentence-transformers as usual (its tokenizer, prompts, pooling and limits stay its
own); its torch forward pass (transformer, pooling, normalisation, or a cross-encoder's classifier head) is
exported once with ``torch.onnx`` into ``EMBEDDING_ONNX_DIR`` and from then on run by ONNX Runtime or by
OpenVINO, which reads the same file. Nothing is downloaded: the export reads the weights already loaded.

``auto`` picks OpenVINO where the CPU computes in bfloat16 (AMX, AVX-512 BF16: OpenVINO then does so by
itself): on all-MiniLM-L6-v2 that is 2.5x ONNX Runtime's texts/s, vectors at cosine 0.99997 of torch's.
Elsewhere OpenVINO computes in float32 and is no faster than ONNX Runtime, which ``auto`` keeps; its
vectors match torch's to 1.0000 (docs/benchmarks.md). A cross-encoder's scores stay in float32 on
``auto``: their order is the answer, and bfloat16 moves scores in the third or fourth digit.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embedding.config import Backend, Settings

log = logging.getLogger("lingxi.embedding")
OPSET = 17
# Most texts per call (texts of like length share a call: ``length_groups``). ONNX Runtime: 16 (on one
# core a smaller batch costs no more per text; 64 mixed texts ran 1.25x faster). OpenVINO: no limit, its
# calls cost more (64 similar texts: 1.15x faster in one call than in four).
MICRO_BATCH = {Backend.onnx: 16, Backend.onnx_int8: 16, Backend.openvino: None}


def use_onnx(settings: Settings, device: str, supports_images: bool) -> bool:
    """``auto`` means the exported model on the CPU and torch on a GPU; image models stay on torch (their
    processors and vision towers are not exported)."""
    if supports_images or settings.backend == Backend.torch:
        return False
    if settings.backend == Backend.auto:
        return device == "cpu"
    return True


def runtime_for(backend: Backend, bf16_by_default: bool) -> Backend:
    """Which runtime runs the exported model: ``auto`` is OpenVINO where it computes in bfloat16 (if the model's
    output may be bfloat16's), else ONNX Runtime."""
    if backend == Backend.auto:
        return Backend.openvino if bf16_by_default and openvino_computes_bf16() else Backend.onnx
    return backend


@functools.cache
def openvino_computes_bf16() -> bool:
    try:
        import openvino
    except ImportError:
        return False
    return bool(openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == openvino.Type.bf16)


class OnnxForward:
    """The forward pass of a loaded sentence-transformers model (``SentenceTransformer`` or ``CrossEncoder``),
    exported to ONNX and run by OpenVINO or ONNX Runtime: ``run(features)`` takes what ``model.preprocess``
    returns and gives ``output``."""

    def __init__(self, model: Any, output: str, source: Path, settings: Settings, *, bf16_by_default: bool) -> None:
        self.output = output
        runtime = runtime_for(settings.backend, bf16_by_default)
        int8 = runtime == Backend.onnx_int8
        self.name = runtime.value  # what /health reports
        self.micro_batch = MICRO_BATCH[runtime]
        sample = model.preprocess(["an example sentence", "another one"])
        self.inputs = [name for name, value in sample.items() if _is_token_tensor(value)]
        others = [name for name, value in sample.items() if _is_tensor(value) and name not in self.inputs]
        if not self.inputs or others:
            raise ValueError(f"the model's inputs {sorted(sample)} are not token tensors only; cannot export it")
        self.path = cached_path(settings.onnx_dir, source, output, int8)
        if not self.path.exists():
            export(model, sample, self.inputs, output, self.path, int8)
        if runtime == Backend.openvino:
            self.session = compile_openvino(self.path, settings.threads)
            self.infer = infer_per_thread(self.session)
        else:
            self.session = open_session(self.path, settings.threads)
            self.infer = lambda feed: self.session.run([output], feed)[0]

    def run(self, features: dict[str, Any]) -> np.ndarray:
        feed = {name: features[name].numpy() for name in self.inputs}
        return np.asarray(self.infer(feed), dtype=np.float32)


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _is_token_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.ndim == 2 and not torch.is_floating_point(value)


def cached_path(onnx_dir: Path, source: Path, output: str, int8: bool) -> Path:
    """One file per model dir (its path and every file's size and time), output and precision, and the
    torch and sentence-transformers versions that exported it: a changed model or library exports again."""
    import sentence_transformers
    import torch

    source = source.resolve()
    digest = hashlib.sha256(
        f"{source}|{output}|{int8}|{torch.__version__}|{sentence_transformers.__version__}".encode()
    )
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"|{file.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    suffix = "-int8" if int8 else ""
    return onnx_dir / f"{source.name}-{output}-{digest.hexdigest()[:16]}{suffix}.onnx"


def export(model: Any, sample: dict[str, Any], inputs: list[str], output: str, path: Path, int8: bool) -> None:
    import torch

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(inputs, tensors, strict=True)))[output]

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")  # processes exporting at once do not clash
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in inputs}
    log.info("exporting the model to ONNX once: %s", path)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constants: none here are
            torch.onnx.export(
                Forward().eval().cpu(),
                tuple(sample[name].cpu() for name in inputs),
                str(partial),
                input_names=inputs,
                output_names=[output],
                dynamic_axes={**axes, output: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = partial.with_suffix(".int8")
            # per-channel weights of the MatMuls only: the most accurate dynamic int8 (MiniLM cosine 0.98)
            quantize_dynamic(
                partial, quantized, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
            )
            os.replace(quantized, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_suffix(".int8").unlink(missing_ok=True)


def open_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compile_openvino(path: Path, threads: int) -> Any:
    """The model compiled by OpenVINO for the CPU, in its own precision there (bfloat16 where the CPU has it)."""
    import openvino

    core = openvino.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads}
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def infer_per_thread(compiled: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Inference on ``compiled`` with one request per calling thread: a request is not thread-safe."""
    local = threading.local()

    def infer(feed: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        return np.array(request.infer(feed)[0])  # a copy: the next call reuses the request's output buffer

    return infer

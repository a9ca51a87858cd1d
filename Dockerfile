# lingxi, CPU image: every service with its embedded default model (see docs/deployment.md).
#   docker build -t lingxi:cpu .
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LINGXI_DATA_DIR=/data LLM_MODEL_CACHE_DIR=/data/models EMBEDDING_ONNX_DIR=/data/onnx
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox libsndfile1 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md requirements-nodeps.txt ./
COPY services ./services
COPY asr ./asr
COPY llm ./llm
COPY tts ./tts
COPY vlm ./vlm
COPY embedding ./embedding
COPY websearch ./websearch
COPY opro ./opro
ARG EXTRAS=embedded
# llama-cpp-python compiles from source here (portable x86-64 code); the compilers leave with this layer
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
 && CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install ".[${EXTRAS}]" \
 && if grep -qv '^\s*\(#\|$\)' requirements-nodeps.txt; then pip install --no-deps -r requirements-nodeps.txt; fi \
 && apt-get purge -y --auto-remove build-essential cmake && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 lingxi && mkdir -p /data /models && chown lingxi /data /models
USER lingxi
VOLUME ["/data", "/models"]
# One image, seven services: `lingxi serve NAME` picks one (docker-compose.yml does).
ENTRYPOINT ["lingxi"]
CMD ["serve", "llm", "--host", "0.0.0.0"]

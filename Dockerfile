# lingxi: one image, seven services (`lingxi serve NAME`; docker-compose.yml runs them). docs/deployment.md.
#   docker build -t lingxi:cpu .                                   the embedded defaults, no torch
#   docker build --build-arg EXTRAS=embedded,gpu -t lingxi:gpu .   + torch (its own CUDA 13 libraries), funasr
# A GPU needs no CUDA base image: PyPI's torch wheels carry their CUDA runtime; the host needs the NVIDIA
# driver (>= 580 for CUDA 13) and the NVIDIA Container Toolkit.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LINGXI_DATA_DIR=/data LINGXI_MODELS_DIR=/models
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox libsndfile1 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# llama-cpp-python first, in a layer of its own: PyPI has only its source, and compiling it (portable
# x86-64 code) is most of a cold build, so no other change rebuilds it. Its pin is pyproject.toml's.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
 && CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python==0.3.36 \
 && apt-get purge -y --auto-remove build-essential cmake && rm -rf /var/lib/apt/lists/* /root/.cache

WORKDIR /app
ARG EXTRAS=embedded
# The other dependencies, from pyproject.toml alone, so that a change of code reuses this layer.
COPY pyproject.toml README.md requirements-nodeps.txt ./
RUN pip install ".[${EXTRAS}]" && pip uninstall -y lingxi \
 && if grep -qv '^\s*\(#\|$\)' requirements-nodeps.txt; then pip install --no-deps -r requirements-nodeps.txt; fi \
 && rm -rf /root/.cache

COPY services ./services
COPY asr ./asr
COPY llm ./llm
COPY tts ./tts
COPY vlm ./vlm
COPY embedding ./embedding
COPY websearch ./websearch
COPY opro ./opro
# a regular (non-editable) install, as a user's `pip install .`: package data included or missing alike
RUN pip install --no-deps . && rm -rf build

# uid 1000 in every build of the image, so one `data` volume serves them all
RUN useradd --create-home --uid 1000 lingxi && mkdir -p /data /models && chown lingxi /data /models
USER lingxi
VOLUME ["/data", "/models"]
ENTRYPOINT ["lingxi"]
CMD ["serve", "llm", "--host", "0.0.0.0"]

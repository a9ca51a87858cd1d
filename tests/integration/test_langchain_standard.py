"""LangChain's own standard suites (``langchain-tests``) on lingxi, as a new user would point LangChain at it:
``ChatOpenAI`` and ``OpenAIEmbeddings`` at ``/v1``, ``ChatOllama`` and ``OllamaEmbeddings`` at ``/ollama``, one
real llm on its embedded default (Qwen2.5-Coder-0.5B-Instruct) with the real embedding service behind it.

Opt-in (~35 minutes on 2 cores): ``./scripts/test --integration tests/integration`` or
``LINGXI_INTEGRATION=1 pytest tests/integration/test_langchain_standard.py``. What the 0.5B model cannot do
(images, audio, PDFs) is switched off through the suites' own capability properties; docs/integrations.md
lists each with why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_ollama import ChatOllama, OllamaEmbeddings
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests

from tests.conftest import running_service

CHAT_MODEL, EMBEDDER = "qwen2.5-coder:0.5b", "use-multilingual-v3"

pytestmark = pytest.mark.skipif(not os.environ.get("LINGXI_INTEGRATION"), reason="opt-in: set LINGXI_INTEGRATION=1")

BASE: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def lingxi(embedding_service: str) -> Iterator[str]:
    """The llm as ``lingxi up`` wires it: the default model, the embedding service behind its one base URL."""
    with running_service("llm", {"LLM_EMBEDDING_URL": embedding_service}) as llm:
        BASE["url"] = llm
        yield llm


class NoMultimodalInputs:
    """The 0.5B model reads text only: no images, audio or PDFs (docs/integrations.md)."""

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False


class TestChatOpenAI(NoMultimodalInputs, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": f"{BASE['url']}/v1", "api_key": "unused", "model": CHAT_MODEL}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestChatOllama(NoMultimodalInputs, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOllama]:
        return ChatOllama

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": f"{BASE['url']}/ollama", "model": CHAT_MODEL}

    @property
    def has_tool_choice(self) -> bool:
        return False  # Ollama's API has no tool_choice: ChatOllama.bind_tools drops it, so the model decides

    @property
    def supports_json_mode(self) -> bool:
        return True


class TestOpenAIEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[OpenAIEmbeddings]:
        return OpenAIEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        # check_embedding_ctx_length=False: LangChain would count tokens with tiktoken, whose vocabulary
        # comes from the internet; lingxi's embedding service cuts long inputs itself
        return {
            "base_url": f"{BASE['url']}/v1",
            "api_key": "unused",
            "model": EMBEDDER,
            "check_embedding_ctx_length": False,
        }


class TestOllamaEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[OllamaEmbeddings]:
        return OllamaEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": f"{BASE['url']}/ollama", "model": EMBEDDER}

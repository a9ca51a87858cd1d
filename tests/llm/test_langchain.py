"""LangChain pointed at lingxi, one base URL each: ``langchain-openai`` at ``/v1`` and
``langchain-ollama`` at ``/ollama``, chatting with the real SmolLM2 and embedding with the real MiniLM."""

import math

from langchain_ollama import ChatOllama, OllamaEmbeddings
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from tests.llm.conftest import EMBEDDER, SMOL

QUESTION = "What is the capital of France?"
TEXTS = ["I love programming", "我喜欢编程"]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_langchain_openai_chat_and_embeddings(suite):
    chat = ChatOpenAI(base_url=f"{suite.url}/v1", api_key="unused", model=SMOL, temperature=0, max_tokens=32)
    assert "Paris" in chat.invoke(QUESTION).content
    # check_embedding_ctx_length=False: LangChain would otherwise count tokens with tiktoken, which
    # downloads its vocabulary from the internet; lingxi's embedding service cuts long inputs itself
    embeddings = OpenAIEmbeddings(
        base_url=f"{suite.url}/v1", api_key="unused", model=EMBEDDER, check_embedding_ctx_length=False
    )
    documents = embeddings.embed_documents(TEXTS)
    assert len(documents) == 2 and len(documents[0]) == 512
    assert cosine(embeddings.embed_query(TEXTS[1]), documents[1]) > 0.999


def test_langchain_ollama_chat_and_embeddings(suite):
    chat = ChatOllama(base_url=f"{suite.url}/ollama", model=SMOL, temperature=0, num_predict=32)
    assert "Paris" in chat.invoke(QUESTION).content
    assert "Paris" in "".join(str(chunk.content) for chunk in chat.stream(QUESTION))
    embeddings = OllamaEmbeddings(base_url=f"{suite.url}/ollama", model=EMBEDDER)
    documents = embeddings.embed_documents(TEXTS)
    assert len(documents) == 2 and len(documents[0]) == 512
    assert cosine(embeddings.embed_query(TEXTS[1]), documents[1]) > 0.999

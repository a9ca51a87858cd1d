"""Upstreams behind a company proxy or signed by a private CA: ``HTTP_PROXY``, ``HTTPS_PROXY`` and
``NO_PROXY`` are honoured for an upstream off this host (a sibling on 127.0.0.1 is reached directly),
and a CA bundle setting trusts the upstream's CA. The proxy is a real one on 127.0.0.1
(``tests.services.raw_servers.Proxy``) that alone can reach the names under ``.test``; the TLS
upstream's certificate is signed by a CA the test makes (trustme)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from fastapi import FastAPI
from fastapi.testclient import TestClient

from llm.app import create_app
from llm.config import Settings
from services.clients import ServiceClient
from services.errors import UpstreamError, UpstreamUnreachable
from tests.conftest import serve_app
from tests.services.raw_servers import Proxy

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
ANSWER = {"object": "list", "data": [{"id": "上游模型", "object": "model"}]}


def openai_upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict:
        return ANSWER

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> dict:
        text = "收到: " + body["messages"][-1]["content"]
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {"id": "c", "object": "chat.completion", "created": 1, "model": body["model"], "choices": [choice]}

    return app


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy and CA variables it means; none leaks in from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    with serve_app(openai_upstream()) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def tls_port(ca, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    authority, _ = ca
    pem = tmp_path_factory.mktemp("tls") / "upstream.pem"
    authority.issue_cert("upstream.test", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    with serve_app(openai_upstream(), ssl_keyfile=str(pem), ssl_certfile=str(pem)) as url:
        yield int(url.rsplit(":", 1)[1])


def models_through(url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **options) -> tuple[object, list]:
    """``GET /v1/models`` of ``url`` by a ``ServiceClient`` made with ``env`` set (``{proxy}`` in a value is
    the proxy's URL): the answer, or the error raised, and what the proxy was asked to carry."""

    async def go() -> tuple[object, list]:
        async with Proxy() as proxy:
            for name, value in env.items():
                monkeypatch.setenv(name, value.format(proxy=proxy.url))
            client = ServiceClient(url, name="the test upstream", retries=0, **options)
            try:
                return await client.get_json("/v1/models"), proxy.seen
            except UpstreamError as exc:
                return exc, proxy.seen
            finally:
                await client.aclose()

    return asyncio.run(go())


def test_an_upstream_off_this_host_is_reached_through_http_proxy(plain_port, monkeypatch):
    answer, seen = models_through(f"http://upstream.test:{plain_port}", {"HTTP_PROXY": "{proxy}"}, monkeypatch)
    assert answer == ANSWER
    assert seen == [f"GET http://upstream.test:{plain_port}/v1/models"]


def test_an_https_upstream_signed_by_a_private_ca_is_reached_through_https_proxy(tls_port, ca, monkeypatch):
    _, ca_file = ca
    env = {"HTTPS_PROXY": "{proxy}"}
    answer, seen = models_through(f"https://upstream.test:{tls_port}", env, monkeypatch, ca_bundle=str(ca_file))
    assert answer == ANSWER
    assert seen == [f"CONNECT upstream.test:{tls_port}"]  # a tunnel: the proxy never saw the request


def test_without_its_ca_the_private_upstream_is_a_502_naming_the_certificate(tls_port, monkeypatch):
    answer, seen = models_through(f"https://upstream.test:{tls_port}", {"HTTPS_PROXY": "{proxy}"}, monkeypatch)
    assert isinstance(answer, UpstreamError) and answer.status_code == 502
    assert "certificate" in answer.message and "CA bundle" in answer.message
    assert seen == [f"CONNECT upstream.test:{tls_port}"]


def test_ssl_cert_file_trusts_the_ca_for_an_upstream_off_this_host(tls_port, ca, monkeypatch):
    _, ca_file = ca
    env = {"HTTPS_PROXY": "{proxy}", "SSL_CERT_FILE": str(ca_file)}
    answer, _ = models_through(f"https://upstream.test:{tls_port}", env, monkeypatch)
    assert answer == ANSWER


def test_no_proxy_sends_the_upstream_around_the_proxy(plain_port, monkeypatch):
    env = {"HTTP_PROXY": "{proxy}", "NO_PROXY": "localhost,upstream.test"}
    answer, seen = models_through(f"http://upstream.test:{plain_port}", env, monkeypatch)
    assert isinstance(answer, UpstreamUnreachable)  # straight to a name only the proxy can reach
    assert seen == []


def test_a_sibling_on_this_host_is_never_sent_to_the_proxy(plain_port, monkeypatch):
    answer, seen = models_through(f"http://127.0.0.1:{plain_port}", {"HTTP_PROXY": "{proxy}"}, monkeypatch)
    assert answer == ANSWER and seen == []


def test_the_llm_gateway_trusts_its_upstreams_ca_bundle_setting(tls_port, ca):
    _, ca_file = ca
    upstream = f"https://127.0.0.1:{tls_port}/v1"
    common = {"engine": "openai", "upstream_url": upstream, "upstream_model": "上游模型", "upstream_retries": 0}
    common |= {"embedding_url": "", "asr_url": "", "tts_url": ""}
    chat = {"messages": [{"role": "user", "content": "你好"}]}
    with TestClient(create_app(Settings(**common, upstream_ca_bundle=str(ca_file)))) as client:
        response = client.post("/v1/chat/completions", json=chat)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "收到: 你好"
    with TestClient(create_app(Settings(**common))) as client:  # public roots only
        response = client.post("/v1/chat/completions", json=chat)
        assert response.status_code in (502, 503) and "certificate" in response.json()["error"]["message"]

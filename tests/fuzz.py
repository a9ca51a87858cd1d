"""Property-based fuzzing of a service's routes from its OpenAPI schema.

schemathesis generates the requests, valid ones and invalid ones, ``LINGXI_FUZZ_EXAMPLES`` (20) per
route; the service's own session fixture sends them (a TestClient, or an httpx client to its real
server), so no model is loaded again. The checks: no 5xx (but a 503 the caller allows, e.g. an engine
that is not configured), no hang, and a JSON body wherever the response says it is JSON.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from schemathesis.generation import GenerationMode

EXAMPLES = int(os.environ.get("LINGXI_FUZZ_EXAMPLES", "20"))
BASE_URL = "http://testserver"
Send = Callable[[dict[str, Any]], httpx.Response]


@dataclass
class Findings:
    cases: dict[str, int] = field(default_factory=dict)  # "METHOD /path" → requests sent
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        counts = ", ".join(f"{route}: {n}" for route, n in self.cases.items())
        return f"{sum(self.cases.values())} cases ({counts})"


def httpx_arguments(case: Any) -> dict[str, Any]:
    """The request schemathesis made, byte for byte as ``requests`` would send it, as httpx's arguments."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    fields = ("method", "url", "headers", "params", "data", "json", "files", "cookies")
    prepared = requests.Request(**{name: kwargs.get(name) for name in fields}).prepare()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return {
        "method": prepared.method,
        "url": str(prepared.url).removeprefix(BASE_URL),
        "headers": headers,
        "content": prepared.body,
    }


def json_body(openapi: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """A requestBody of JSON ``model``, its nested models registered in ``openapi``'s components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(schema.pop("$defs", {}))
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def problem_of(response: httpx.Response, allow_503: bool) -> str | None:
    status = response.status_code
    if status >= 500 and not (status == 503 and allow_503):
        return f"{status}: {response.text[:300]}"
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            json.loads(response.content)
        except ValueError:
            return f"{status} says application/json but is not: {response.text[:200]!r}"
    return None


def fuzz(
    openapi: dict[str, Any],
    send: Send,
    *,
    allow_503: Callable[[str, httpx.Response], bool] = lambda route, response: False,
    skip: Iterable[str] = (),
    request_bodies: dict[str, dict[str, Any]] | None = None,
    examples: int = EXAMPLES,
) -> Findings:
    """Fuzz every operation of ``openapi`` but those in ``skip`` ("METHOD /path"). ``request_bodies``
    ("METHOD /path" → an OpenAPI requestBody) describes the body of a route that reads the request
    itself, where its schema has none."""
    openapi = copy.deepcopy(openapi)
    for route, body in (request_bodies or {}).items():
        method, path = route.split(" ", 1)
        operation = openapi["paths"].get(path, {}).get(method.lower())
        if operation is not None:
            operation.setdefault("requestBody", body)
    schema = schemathesis.openapi.from_dict(openapi)
    findings = Findings()
    for path, item in openapi["paths"].items():
        for method in item:
            route = f"{method.upper()} {path}"
            if route not in skip:
                fuzz_operation(route, schema[path][method.upper()], send, allow_503, examples, findings)
    return findings


def fuzz_operation(
    route: str,
    operation: Any,
    send: Send,
    allow_503: Callable[[str, httpx.Response], bool],
    examples: int,
    findings: Findings,
) -> None:
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    findings.cases[route] = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],  # every case runs; nothing is shrunk (a finding is reported as sent)
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Any) -> None:
        request = httpx_arguments(case)
        findings.cases[route] += 1
        try:
            response = send(request)
        except httpx.TimeoutException:
            findings.problems.append(f"{route}: no answer in time to {request}")
            return
        problem = problem_of(response, allow_503(route, response))
        if problem:
            findings.problems.append(f"{route}: {problem}\n    request: {request}")

    run()

"""Schemathesis over the whole OpenAPI schema against the live ASGI app, as an owner's API key
with every scope of one tenant (and the device-only operations as a device): no server error,
every response body and status code as the schema documents them (docs/SECURITY.md)."""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import build_tenant

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# Per operation and generation mode: ~176 operations × 2 modes fit in about a minute.
EXAMPLES = 5


def _schema() -> schemathesis.BaseSchema:
    # The generator's document holds lazy strings; the loader wants plain JSON.
    document = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))


def _fuzz(operation, mode, *, base_url: str, headers: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    run()


def _fuzz_all(schema, *, base_url: str, headers: dict) -> list[str]:
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, base_url=base_url, headers=headers)
            except Unsatisfiable:
                continue  # no invalid request exists (no parameters, no body): nothing to try
            except (Exception, BaseExceptionGroup) as failure:  # reported all at once
                failures.append(f"{operation.label} [{mode.value}]: {failure}")
    return failures


def _report(failures: list[str]) -> str:
    return f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_api_answers_as_its_schema_says(asgi_live_server, api_key_for):
    # The schemathesis pytest plugin's lazy mode (from_fixture) does not run on pytest 9, and
    # the eager one would build a live server and flush the database per operation: one test
    # walks every operation with schemathesis's own strategies and checks instead.
    tenant = build_tenant("fuzz")
    headers = {"Authorization": f"Api-Key {api_key_for(tenant)}"}
    failures = _fuzz_all(_schema(), base_url=asgi_live_server.url, headers=headers)
    assert not failures, _report(failures)
    # The run ended as it began, authenticated: a fuzzed DELETE did not revoke the key midway
    # (which would have turned the rest of the run into 401s).
    me = requests.get(f"{asgi_live_server.url}/api/v1/me/", headers=headers, timeout=10)
    assert me.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_device_operations_answer_as_the_schema_says(asgi_live_server, device_for):
    # An API key only gets 401/403 from the operations reserved to device tokens (the native
    # batch, GPX, POD, scans, the driver app): fuzz those again as a registered device.
    tenant = build_tenant("fuzz-device")
    _device, token = device_for(tenant)
    device_only = _schema().include(path_regex="^/api/v1/(ingest|driver)/")
    failures = _fuzz_all(
        device_only,
        base_url=asgi_live_server.url,
        headers={"Authorization": f"Device {token}"},
    )
    assert not failures, _report(failures)

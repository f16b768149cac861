"""Schema-driven fuzzing of the whole API with schemathesis, against the project's own OpenAPI.

Every operation is called with generated parameters and bodies (deterministic: derandomized,
bounded examples) through the real WSGI application, over a seeded world. No call may answer a
5xx, and every answer must match what the schema documents (status, content type, body).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.generation.modes import GenerationMode

from api.testing import api_world_seed, throttle_rates_set

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# Both data that fits the schema and data that does not (wrong types, out-of-range ids, bad
# enums): the API must answer every one of them with a documented 4xx, never a 5xx.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _world(db, settings):
    throttle_rates_set(settings)
    api_world_seed()
    # The WSGI handler closes "old" connections at the end of a request, which would drop the
    # test's transaction (and its seeded data); Django's own test client disconnects these too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error_or_breaks_its_schema(case):
    response = case.call()
    case.validate_response(response, checks=CHECKS)

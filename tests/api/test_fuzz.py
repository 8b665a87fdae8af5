"""A bounded property-based fuzz of the whole API (issue 11): schemathesis generates requests from the app's own
OpenAPI schema (/api/schema/), valid and invalid, and sends them with a runner token through the WSGI app. Nothing
may answer 5xx, and every answer must match the schema's status codes, content types and bodies.

Run on PostgreSQL in CI (its limits differ from SQLite's); the example count keeps the module to a few minutes.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from collector.models import Project, RunnerToken
from perfboard.wsgi import application

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 60

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def fuzz_token(transactional_db):
    # transactional_db: requests go through the whole WSGI handler, which closes connections left in a transaction
    project = Project.objects.create(slug="fuzz", name="Fuzz")
    return RunnerToken.issue(project, "fuzzer")[1]


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_schema_conformance(case, fuzz_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_token}"}, checks=CHECKS)

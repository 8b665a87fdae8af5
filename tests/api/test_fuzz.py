"""A bounded property-based fuzz of the whole API (issue 11): schemathesis generates requests from the app's own
OpenAPI schema (/api/schema/), valid and invalid, and sends them with a runner token through the WSGI app. Nothing
may answer 5xx, and every answer must match the schema's status codes, content types and bodies.

Run on PostgreSQL in CI (its limits differ from SQLite's); the example count keeps the module to a few minutes.
"""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, negative_data_rejection, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from collector.models import Project, RunnerToken
from perfboard.wsgi import application

# Invalid requests must be refused with a 4xx (negative_data_rejection), valid ones answered as documented.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
MAX_EXAMPLES = int(os.environ.get("PERFBOARD_FUZZ_EXAMPLES", 60))

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# A batch over 1,000 runs is refused with the documented 413 (over the limit), not a 400.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@pytest.fixture
def fuzz_token(transactional_db):
    # transactional_db: requests go through the whole WSGI handler, which closes connections left in a transaction
    project = Project.objects.create(slug="fuzz", name="Fuzz")
    return RunnerToken.issue(project, "fuzzer")[1]


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_schema_conformance(case, fuzz_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_token}"}, checks=CHECKS)

"""docs/api.md, the project's copy of the wire contract: in step with the shared contract, and every endpoint and
query parameter it names exists in the OpenAPI schema the app serves (and every /api/v1/ path is documented)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
SHARED = ROOT.parent / "shared" / "spec" / "API.md"
ENDPOINT = re.compile(r"`?(GET|POST|PATCH|PUT|DELETE) (/api/v1/[\w/<>{}-]*)")
EXAMPLE_QUERY = re.compile(r"^## (GET) (/api/v1/[\w/-]+)\n`\?([^`]+)`", re.M)


def contract_part() -> str:
    text = DOC.read_text()
    return text[text.index("# Perfboard wire contract"):text.index("\n## Additions")]


def documented() -> set[tuple[str, str]]:
    """(method, path) named in the doc, with <run_id>-style placeholders as the schema's {run_id}."""
    found = set()
    for method, path in ENDPOINT.findall(DOC.read_text()):
        found.add((method.lower(), re.sub(r"<(\w+)>", r"{\1}", path.rstrip("/"))))
    return found


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/schema/?format=json").json()


@pytest.mark.skipif(not SHARED.exists(), reason="the shared contract is not beside this clone")
def test_the_projects_copy_is_the_shared_contract():
    assert contract_part().strip() == SHARED.read_text().strip()


def test_every_documented_endpoint_exists(schema):
    paths = schema["paths"]
    for method, path in documented():
        assert path in paths and method in paths[path], f"{method.upper()} {path} is documented but not served"


def test_every_served_endpoint_is_documented(schema):
    named = {path for _, path in documented()}
    for path in schema["paths"]:
        if path.startswith("/api/v1/"):
            assert path in named or any(path.startswith(n + "/") for n in named if "{" not in n), (
                f"{path} is served but docs/api.md does not name it")


def test_the_example_queries_use_parameters_the_schema_has(schema):
    examples = EXAMPLE_QUERY.findall(DOC.read_text())
    assert examples, "the doc's example queries were not found"
    for method, path, query in examples:
        declared = {p["name"] for p in schema["paths"][path][method.lower()].get("parameters", [])}
        used = {pair.split("=")[0] for pair in query.split("&")}
        assert used <= declared, f"{path}: {sorted(used - declared)} not in the schema"

"""Issue 11: the OpenAPI document is self-contained: every $ref resolves from the document's root."""


def refs(node, path="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{path}/{i}")


def resolve(document, ref):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_every_ref_of_the_schema_resolves_from_the_root(client):
    document = client.get("/api/schema/?format=json").json()
    found = list(refs(document))
    assert found, "the schema has no $ref at all"
    broken = []
    for where, ref in found:
        try:
            resolve(document, ref)
        except (KeyError, IndexError, ValueError, AssertionError):
            broken.append((where, ref))
    assert not broken


def test_the_upload_body_is_a_run_or_a_batch_with_their_limits(client):
    document = client.get("/api/schema/?format=json").json()
    body = document["paths"]["/api/v1/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = resolve(document, body["$ref"])
    choices = [resolve(document, c["$ref"]) if "$ref" in c else c for c in body["oneOf"]]
    run, batch = choices
    assert "run_id" in run["properties"] and run["additionalProperties"] is False
    assert batch["properties"]["runs"]["maxItems"] == 1000
    model = resolve(document, run["properties"]["model"]["$ref"])
    assert model["properties"]["format"]["maxLength"] == 32


def test_the_document_is_valid_openapi(client):
    from drf_spectacular.validation import validate_schema

    document = client.get("/api/schema/?format=json").json()
    validate_schema(document)  # pydantic's {"type": "null"} is not OpenAPI 3.0: the upload body uses nullable
    run = document["components"]["schemas"]["RunIn"]
    assert run["properties"]["variant"]["nullable"] is True

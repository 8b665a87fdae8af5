"""OpenAPI post-processing: every operation documents the errors every view can answer.

DRF answers 400 (a bad parameter or body), 401 (no valid token or login), 403 (a token or member without access) and
404 (nothing by that id or page in the caller's project) from any view; views document only what is theirs to add.
A client generated from the schema, or the fuzz test (tests/api/test_fuzz.py), then meets no undocumented status.
"""

ERROR = {"type": "object", "description": "`detail`, or the names of the fields or parameters in error"}
COMMON_ERRORS = {
    "400": "a bad parameter or body, named as a key of the answer",
    "401": "no valid token or login",
    "403": "the token or member may not read or change this",
    "404": "not found in the caller's project",
}


def document_common_errors(result, generator, request, public):
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": ERROR}}})
    return result

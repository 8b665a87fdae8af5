"""Reading and validating an upload body: size limit, gzip, JSON, single or batch shape, per-run field errors."""
import json
import zlib

from django.conf import settings
from pydantic import ValidationError

from .schema import RunIn, field_errors


class UploadError(Exception):
    """An upload refused before anything is stored. `errors` maps a run index (or "body") to field errors."""

    def __init__(self, status, detail, errors=None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


def read_body(request) -> bytes:
    """The raw body, refusing with 413 anything over the limit, before or after gzip."""
    limit = settings.PERFBOARD["MAX_UPLOAD_BYTES"]
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise UploadError(400, "Content-Length is not a number.")
    if declared > limit:
        raise UploadError(413, f"body is {declared} bytes; the limit is {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise UploadError(413, f"body is over the limit of {limit} bytes")
    if request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
        # Bounded inflate: a small gzip bomb must not become gigabytes in memory.
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise UploadError(400, "body is not valid gzip")
        if len(body) > limit or inflater.unconsumed_tail:
            raise UploadError(413, f"body inflates past the limit of {limit} bytes")
    return body


def parse_runs(body: bytes) -> tuple[list[RunIn], bool]:
    """Validated runs and whether the body was a batch. Raises UploadError (400/413) naming every bad field."""
    if not body:
        raise UploadError(400, "body is empty: send one run object or {\"runs\": [...]}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UploadError(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        raise UploadError(400, "body must be a JSON object: one run, or {\"runs\": [...]}")
    batch = "runs" in data
    if batch:
        items = data["runs"]
        extra = sorted(set(data) - {"runs"})
        if extra:
            raise UploadError(400, "batch body has unknown fields", {"body": [{"field": f, "message": "unknown field"} for f in extra]})
        if not isinstance(items, list) or not items:
            raise UploadError(400, "runs must be a non-empty list", {"body": [{"field": "runs", "message": "must be a non-empty list"}]})
        limit = settings.PERFBOARD["MAX_RUNS_PER_BATCH"]
        if len(items) > limit:
            raise UploadError(413, f"runs has {len(items)} runs; at most {limit} per upload", {"body": [{"field": "runs", "message": f"at most {limit} runs per upload"}]})
    else:
        items = [data]
    runs, errors = [], {}
    for i, item in enumerate(items):
        try:
            runs.append(RunIn.model_validate(item))
        except ValidationError as exc:
            errors[str(i)] = field_errors(exc)
    if errors:
        n = len(errors)
        raise UploadError(400, f"{n} of {len(items)} runs are invalid; nothing was stored", errors)
    return runs, batch

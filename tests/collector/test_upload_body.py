"""Issue 11 #9 and #10: how an upload's bytes are read (chunked, gzip) before they are parsed."""
import gzip
import io
import json
import zlib

import pytest

from collector.models import Run

URL = "/api/v1/runs"


def chunked(client, raw: bytes, stream=None, **extra):
    """POST as gunicorn hands a chunked request to Django: the de-chunked body in wsgi.input, no CONTENT_LENGTH."""
    environ = {"wsgi.input": stream or io.BytesIO(raw), "HTTP_TRANSFER_ENCODING": "chunked",
               "CONTENT_TYPE": "application/json", **extra}
    return client.generic("POST", URL, data=b"", **environ)


@pytest.fixture
def small_limit(settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "MAX_UPLOAD_BYTES": 8192}
    return 8192


class Endless(io.RawIOBase):
    """A stream that never ends: reading must stop at the limit, not at EOF."""

    def __init__(self):
        self.served = 0

    def readable(self):
        return True

    def read(self, n=-1):
        n = 1 << 16 if n is None or n < 0 else n
        self.served += n
        return b" " * n


def test_chunked_run_is_stored(runner, make_run):
    run = make_run()
    r = chunked(runner, json.dumps(run).encode())
    assert r.status_code == 201, r.content
    assert Run.objects.get().run_id.hex == run["run_id"].replace("-", "")


def test_chunked_gzip_batch_is_stored(runner, make_run):
    runs = [make_run() for _ in range(3)]
    r = chunked(runner, gzip.compress(json.dumps({"runs": runs}).encode()), HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 201, r.content
    assert Run.objects.count() == 3


def test_empty_chunked_body_is_400(runner):
    r = chunked(runner, b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"]


def test_chunked_body_over_the_limit_is_413_and_read_no_further(runner, make_run, small_limit):
    r = chunked(runner, json.dumps({"runs": [make_run() for _ in range(20)]}).encode())
    assert r.status_code == 413, r.content
    endless = Endless()
    r = chunked(runner, b"", stream=endless)
    assert r.status_code == 413
    assert endless.served <= small_limit + 1
    assert Run.objects.count() == 0

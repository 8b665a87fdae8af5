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


# --- gzip: exactly one complete member -------------------------------------------------------------------------------

def gz(client, raw: bytes):
    return client.post(URL, data=raw, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")


def test_one_complete_gzip_member_is_stored(runner, make_run):
    assert gz(runner, gzip.compress(json.dumps(make_run()).encode())).status_code == 201


@pytest.mark.parametrize("damage, words", [
    (lambda z, _: z[:-8], "truncated"),                  # no CRC/size trailer
    (lambda z, _: z[:-3], "truncated"),                  # half a trailer
    (lambda z, _: z[:len(z) // 2], "truncated"),         # cut inside the deflate stream
    (lambda z, _: z[:-8] + bytes([z[-8] ^ 0xFF]) + z[-7:], "gzip"),  # wrong CRC-32
    (lambda z, _: z[:-4] + b"\x00\x00\x00\x00", "gzip"),  # wrong size
    (lambda z, _: z + b"garbage", "after its end"),
    (lambda z, _: z + b"\x00" * 16, "after its end"),
    (lambda z, extra: z + extra, "second member"),
])
def test_damaged_or_extended_gzip_is_400_and_stores_nothing(runner, make_run, damage, words):
    body = json.dumps(make_run()).encode()
    # A second member that would still make valid JSON if joined: whitespace after the object.
    r = gz(runner, damage(gzip.compress(body), gzip.compress(b"   ")))
    assert r.status_code == 400, r.content
    assert words in r.json()["detail"]
    assert Run.objects.count() == 0


def test_body_split_over_two_gzip_members_is_400(runner, make_run):
    body = json.dumps(make_run()).encode()
    r = gz(runner, gzip.compress(body[:100]) + gzip.compress(body[100:]))
    assert r.status_code == 400 and "second member" in r.json()["detail"]


def test_gzip_bomb_is_still_413(runner, small_limit):
    assert gz(runner, gzip.compress(b" " * (small_limit * 50))).status_code == 413
    # Inflating to exactly the limit is fine (then it is just not a run).
    r = gz(runner, gzip.compress(b" " * small_limit))
    assert r.status_code == 400 and "JSON" in r.json()["detail"]


def test_zlib_and_raw_deflate_are_not_gzip(runner, make_run):
    body = json.dumps(make_run()).encode()
    assert gz(runner, zlib.compress(body)).status_code == 400

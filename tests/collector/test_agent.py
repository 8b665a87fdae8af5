"""perfboard-agent against a live server: batching, the spool when the server is down, and draining it."""
import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from collector.models import Run
from perfboard_agent.cli import main


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Front:
    """A real HTTP server in a thread before the live server: it answers 500 to any batch holding a poison run_id,
    plays queued answers (status, headers) first, and forwards everything else to the live server."""

    def __init__(self, upstream):
        self.upstream, self.poison, self.queued, self.requests = upstream, set(), [], []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                run_ids = [r["run_id"] for r in json.loads(gzip.decompress(body))["runs"]]
                front.requests.append((time.monotonic(), run_ids))
                if front.queued:
                    status, headers = front.queued.pop(0)
                    return self.answer(status, b'{"detail": "busy"}', headers)
                if front.poison & set(run_ids):
                    return self.answer(500, b"IntegrityError: value too long for type character varying(64)")
                r = requests.post(front.upstream + self.path, data=body, headers={
                    k: self.headers[k] for k in ("Authorization", "Content-Type", "Content-Encoding")})
                self.answer(r.status_code, r.content)

            def answer(self, status, content, headers=()):
                self.send_response(status)
                for name, value in dict(headers).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def attempts(self, run_id):
        return sum(run_id in ids for _, ids in self.requests)


@pytest.fixture
def front(live_server):
    server = Front(live_server.url)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def runs_file(tmp_path, make_run):
    path = tmp_path / "runs.jsonl"
    runs = [make_run() for _ in range(7)]
    path.write_text("\n".join(json.dumps(r) for r in runs))
    return path, runs


@pytest.mark.django_db(transaction=True)
def test_spool_survives_a_down_server_then_drains(live_server, runner_token, runs_file, tmp_path, capsys):
    path, runs = runs_file
    spool = tmp_path / "spool"
    down = f"http://127.0.0.1:{free_port()}"
    args = ["--token", runner_token, "--spool", str(spool), "--batch", "3", "--retries", "1", "--backoff", "0.01"]

    assert main(["upload", str(path), "--url", down, *args]) == 3
    assert len(list(spool.glob("*.json"))) == 3  # 3 + 3 + 1 runs
    assert Run.objects.count() == 0

    # Server back: the spool goes first, then the new file; nothing lost, nothing twice.
    more = tmp_path / "more.json"
    more.write_text(json.dumps({"runs": [dict(runs[0]), dict(runs[0], run_id="0f6c2a0e-5d1b-4b7e-9a51-0c7d3e1f2a90")]}))
    assert main(["upload", str(more), "--url", live_server.url, *args]) == 0
    assert list(spool.glob("*.json")) == []
    assert Run.objects.count() == 8
    assert "sent 1 new, 1 already stored, 7 from the spool" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_rejected_runs_are_reported_not_spooled(live_server, runner_token, tmp_path, make_run, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(make_run(compute_units="gpu")))
    code = main(["upload", str(bad), "--url", live_server.url, "--token", runner_token, "--spool", str(tmp_path / "s")])
    assert code == 1
    assert "compute_units" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or list((tmp_path / "s").iterdir()) == []


def test_unreadable_file_is_exit_2(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{oops")
    assert main(["upload", str(bad), "--url", "http://127.0.0.1:1", "--token", "t"]) == 2


@pytest.mark.django_db(transaction=True)
def test_a_poison_batch_is_set_aside_and_the_rest_goes_on(front, runner_token, runs_file, tmp_path, capsys):
    path, runs = runs_file
    spool, rejected = tmp_path / "spool", tmp_path / "rejected"
    front.poison.add(runs[3]["run_id"])  # the second batch of three
    args = ["--url", front.url, "--token", runner_token, "--spool", str(spool), "--batch", "3",
            "--retries", "2", "--backoff", "0"]

    assert main(["upload", str(path), *args]) == 1
    assert front.attempts(runs[3]["run_id"]) == 3  # the first try and 2 retries, no more
    assert front.attempts(runs[6]["run_id"]) == 1  # the batch after it was sent, not spooled
    assert Run.objects.count() == 4
    assert not spool.exists() or list(spool.iterdir()) == []
    [kept] = rejected.glob("*.json")
    assert [r["run_id"] for r in json.loads(kept.read_text())] == [r["run_id"] for r in runs[3:6]]
    response = kept.with_name(kept.stem + ".response.txt").read_text()
    assert response.startswith("status: 500\n") and "IntegrityError" in response
    out, err = capsys.readouterr()
    assert f"sent 4 new, 0 already stored, 0 from the spool; 0 spooled in {spool}; 3 rejected (kept in {rejected})" in out
    assert f"rejected 3 runs (500); the batch is kept in {kept}" in err and "IntegrityError" in err

    # The next call is not stalled: nothing spooled, new runs go straight through.
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps(dict(runs[0], run_id="0f6c2a0e-5d1b-4b7e-9a51-0c7d3e1f2a90")))
    assert main(["upload", str(more), *args]) == 0
    assert Run.objects.count() == 5
    assert "sent 1 new, 0 already stored, 0 from the spool; 0 spooled" in capsys.readouterr().out

    # Once the server is fixed, the kept batch is resent as it is.
    front.poison.clear()
    assert main(["upload", str(kept), *args]) == 0
    assert Run.objects.count() == 8


@pytest.mark.django_db(transaction=True)
def test_a_poison_batch_in_the_spool_does_not_block_the_rest(front, runner_token, runs_file, tmp_path, capsys):
    path, runs = runs_file
    spool = tmp_path / "spool"
    args = ["--token", runner_token, "--spool", str(spool), "--batch", "3", "--retries", "1", "--backoff", "0"]
    assert main(["upload", str(path), "--url", f"http://127.0.0.1:{free_port()}", *args]) == 3
    assert len(list(spool.glob("*.json"))) == 3

    front.poison.add(runs[0]["run_id"])  # the oldest spooled batch
    more = tmp_path / "more.json"
    more.write_text(json.dumps(dict(runs[0], run_id="0f6c2a0e-5d1b-4b7e-9a51-0c7d3e1f2a90")))
    assert main(["upload", str(more), "--url", front.url, *args]) == 1
    assert list(spool.iterdir()) == []
    assert [len(json.loads(p.read_text())) for p in (tmp_path / "rejected").glob("*.json")] == [3]
    assert Run.objects.count() == 5
    assert "sent 1 new, 0 already stored, 4 from the spool; 0 spooled" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_503_with_retry_after_is_retried_then_succeeds(front, runner_token, runs_file, tmp_path, capsys):
    path, runs = runs_file
    front.queued.append((503, {"Retry-After": "1"}))
    args = ["--url", front.url, "--token", runner_token, "--spool", str(tmp_path / "spool"), "--retries", "2",
            "--backoff", "0"]
    assert main(["upload", str(path), *args]) == 0
    (first, _), (second, _) = front.requests
    assert second - first >= 0.9  # waited as the server asked, though the backoff is 0
    assert Run.objects.count() == 7
    assert "sent 7 new" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_server_saying_later_every_time_spools(front, runner_token, runs_file, tmp_path):
    path, runs = runs_file
    spool = tmp_path / "spool"
    front.queued.extend([(503, {})] * 2)
    args = ["--url", front.url, "--token", runner_token, "--spool", str(spool), "--batch", "3", "--retries", "1",
            "--backoff", "0"]
    assert main(["upload", str(path), *args]) == 3  # 503 says nothing about the runs: spooled, not rejected
    assert len(front.requests) == 2  # the server is treated as down after the first batch
    assert len(list(spool.glob("*.json"))) == 3
    assert not (tmp_path / "rejected").exists()
    assert main(["upload", *args]) == 0
    assert Run.objects.count() == 7

"""perfboard-agent against a live server: batching, the spool when the server is down, and draining it."""
import json
import socket

import pytest

from collector.models import Run
from perfboard_agent.cli import main


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

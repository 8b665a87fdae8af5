"""Batching, retries with backoff, a spool for what could not be sent, and a rejected/ folder for what never will be.

Retries are urllib3's `Retry` on the requests session: a network error, a timeout, 429 or a 5xx is retried up to
`retries` times with exponential backoff and jitter (a `Retry-After` header is obeyed, up to MAX_RETRY_AFTER).
POST is retried too: uploads are idempotent by run_id. When the retries run out, what the last attempt got decides:

- no answer (server unreachable, timeout), or 429/503 (the server says "later", which says nothing about the runs):
  the batch is written to the spool, and every later call sends the spool first;
- another 5xx (the server answered but could not store this batch): the batch is set aside in `rejected/` with the
  server's answer, and the upload goes on with the next batch; one poison batch never stalls the ones after it;
- a 4xx other than 429: the runs themselves are wrong, retrying cannot help; they are reported. A batch from the
  spool is set aside in `rejected/` (the spool held the only copy); one read from the caller's files is not.

A batch in `rejected/` is `NAME.json` (the runs, as a list: `perfboard-agent upload NAME.json` resends it) beside
`NAME.response.txt` (the status, the address and the server's body).
"""
import gzip
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
LATER_STATUS = frozenset({429, 503})  # "come back later": the batch is spooled, not rejected
MAX_RETRY_AFTER = 120.0  # seconds; a server asking for more does not hang a CI job
MAX_SAVED_BODY = 1 << 20


class Rejected(Exception):
    """The server answered but will not store a batch: a 4xx (the runs are wrong) or a 5xx after every retry.

    `kept` is where the batch was set aside (None when it was not: a 4xx on runs read from the caller's files).
    """

    def __init__(self, status, body, runs=0, kept=None):
        super().__init__(f"server refused the batch ({status}): {body[:2000]}")
        self.status, self.body, self.runs, self.kept = status, body, runs, kept


class Unavailable(Exception):
    """No answer from the server, or only "later" (429/503), after every retry: the batch goes to the spool."""


@dataclass
class Report:
    sent: int = 0
    duplicates: int = 0
    spooled: int = 0
    drained: int = 0
    rejected: list = field(default_factory=list)

    @property
    def rejected_runs(self) -> int:
        return sum(exc.runs for exc in self.rejected)


class _Retry(Retry):
    """urllib3's Retry with Retry-After capped at MAX_RETRY_AFTER."""

    def get_retry_after(self, response):
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER)


def retry_policy(retries: int, backoff: float) -> Retry:
    """Up to `retries` retries of anything (connect, read, status); waits 0, 2*backoff, 4*backoff, ... (+ jitter)."""
    return _Retry(
        total=retries,
        backoff_factor=backoff,
        backoff_jitter=backoff,
        status_forcelist=RETRYABLE_STATUS,
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back as a response: a persistent 500 is a poison batch
    )


def read_runs(path: Path) -> list[dict]:
    """Runs from a .json file (one run, a list, or {"runs": [...]}) or a .jsonl file (one run per line)."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "runs" in data:
        return data["runs"]
    return [data]


class Uploader:
    def __init__(self, url, token, spool_dir, batch_size=500, retries=4, backoff=0.5, timeout=60.0,
                 rejected_dir=None):
        self.endpoint = url.rstrip("/") + "/api/v1/runs"
        self.spool = Path(spool_dir)
        self.rejected_dir = Path(rejected_dir) if rejected_dir else self.spool.parent / "rejected"
        self.batch_size, self.timeout = batch_size, timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry_policy(retries, backoff))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        })

    def upload(self, runs: list[dict]) -> Report:
        report = Report()
        server_down = not self._drain_spool(report)
        for start in range(0, len(runs), self.batch_size):
            batch = runs[start:start + self.batch_size]
            if server_down:
                self._spool(batch, report)
                continue
            try:
                created, duplicates = self._send(batch)
                report.sent += created
                report.duplicates += duplicates
            except Rejected as exc:
                if exc.status >= 500:  # the runs may be fine and the server at fault: keep them for a resend
                    exc.kept = self._set_aside(batch, exc, f"{self._name()}.json")
                report.rejected.append(exc)
            except Unavailable:
                server_down = True  # no point waiting out the backoff again for every batch
                self._spool(batch, report)
        return report

    def _drain_spool(self, report) -> bool:
        """Send spooled batches, oldest first. False when the server is still unavailable."""
        for path in sorted(self.spool.glob("*.json")) if self.spool.exists() else []:
            batch = json.loads(path.read_text())
            try:
                self._send(batch)
            except Rejected as exc:
                exc.kept = self._set_aside(batch, exc, path.name)  # kept for a person to read, never resent
                path.unlink()
                report.rejected.append(exc)
                continue
            except Unavailable:
                return False
            path.unlink()
            report.drained += len(batch)
        return True

    def _send(self, batch) -> tuple[int, int]:
        """POST one batch (the session retries what may pass later); returns (created, duplicate)."""
        body = gzip.compress(json.dumps({"runs": batch}).encode())
        try:
            r = self.session.post(self.endpoint, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unavailable(f"could not reach {self.endpoint}: {exc}") from exc
        if r.status_code in (200, 201):
            answer = r.json()
            return answer.get("created", 0), answer.get("duplicate", 0)
        if r.status_code in LATER_STATUS:
            raise Unavailable(f"{self.endpoint} answered {r.status_code} after every retry")
        raise Rejected(r.status_code, r.text, runs=len(batch))

    def _set_aside(self, batch, exc, name) -> Path:
        """Write the batch and the server's answer to rejected/NAME and NAME.response.txt; returns the batch's path."""
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        path = self.rejected_dir / name
        response = path.with_name(path.stem + ".response.txt")
        response.write_text(f"status: {exc.status}\nurl: {self.endpoint}\n"
                            f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n\n"
                            f"{exc.body[:MAX_SAVED_BODY]}\n")
        self._write_atomic(path, batch)
        return path

    def _spool(self, batch, report):
        self.spool.mkdir(parents=True, exist_ok=True)
        self._write_atomic(self.spool / f"{self._name()}.json", batch)
        report.spooled += len(batch)

    @staticmethod
    def _name() -> str:
        return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def _write_atomic(path: Path, batch):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(batch))
        os.replace(tmp, path)  # atomic: a crash never leaves half a batch to resend

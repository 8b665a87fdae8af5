"""Batching, retries with backoff, and a spool directory for what could not be sent.

A batch that fails on a network error, a timeout, 429 or a 5xx is retried with exponential backoff and jitter; when
the retries run out it is written to the spool, and every later call sends the spool first. A 4xx other than 429
means the runs themselves are wrong: retrying cannot help, so they are reported and not spooled.
"""
import gzip
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class Rejected(Exception):
    """The server refused a batch for what it contains (4xx): the caller must fix the runs."""

    def __init__(self, status, body):
        super().__init__(f"server refused the batch ({status}): {body}")
        self.status, self.body = status, body


@dataclass
class Report:
    sent: int = 0
    duplicates: int = 0
    spooled: int = 0
    drained: int = 0
    rejected: list = field(default_factory=list)


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
    def __init__(self, url, token, spool_dir, batch_size=500, retries=4, backoff=0.5, timeout=60.0):
        self.endpoint = url.rstrip("/") + "/api/v1/runs"
        self.spool = Path(spool_dir)
        self.batch_size, self.retries, self.backoff, self.timeout = batch_size, retries, backoff, timeout
        self.session = requests.Session()
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
                report.rejected.append(exc)
            except ConnectionError:
                server_down = True  # no point waiting out the backoff again for every batch
                self._spool(batch, report)
        return report

    def _drain_spool(self, report) -> bool:
        """Send spooled batches, oldest first. False when the server is still unreachable."""
        for path in sorted(self.spool.glob("*.json")) if self.spool.exists() else []:
            batch = json.loads(path.read_text())
            try:
                self._send(batch)
            except Rejected as exc:
                report.rejected.append(exc)
                path.rename(path.with_suffix(".rejected"))  # kept for a person to read, never resent
                continue
            except ConnectionError:
                return False
            path.unlink()
            report.drained += len(batch)
        return True

    def _send(self, batch) -> tuple[int, int]:
        """POST one batch, retrying what may pass later; returns (created, duplicate)."""
        body = gzip.compress(json.dumps({"runs": batch}).encode())
        for attempt in range(self.retries + 1):
            try:
                r = self.session.post(self.endpoint, data=body, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout):
                r = None
            if r is not None and r.status_code in (200, 201):
                answer = r.json()
                return answer.get("created", 0), answer.get("duplicate", 0)
            if r is not None and r.status_code not in RETRYABLE_STATUS:
                raise Rejected(r.status_code, r.text[:2000])
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt * (0.5 + random.random()))
        raise ConnectionError(f"could not reach {self.endpoint} after {self.retries + 1} attempts")

    def _spool(self, batch, report):
        self.spool.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.spool / f"{name}.tmp"
        tmp.write_text(json.dumps(batch))
        os.replace(tmp, self.spool / f"{name}.json")  # atomic: a crash never leaves half a batch to resend
        report.spooled += len(batch)

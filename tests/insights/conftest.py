"""Scenario series for the detector: one CSV per case in ``data/``, named for what it shows (Conbench style)."""

import csv
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def read_times(name: str) -> list[tuple[str, float]]:
    with open(DATA / name, newline="") as f:
        return [(row["version"], float(row["value_ms"])) for row in csv.DictReader(f)]


def read_failures(name: str) -> list[tuple[str, bool]]:
    with open(DATA / name, newline="") as f:
        return [(row["version"], row["status"] != "ok") for row in csv.DictReader(f)]


@pytest.fixture
def times():
    return read_times


@pytest.fixture
def failures():
    return read_failures

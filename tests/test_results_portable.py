"""Committed result files name no directory of the machine that produced them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted(p for d in ("examples", "docs", "benchmarks") for p in (ROOT / d).rglob("*.json")
                 if "_build" not in p.parts)
ABSOLUTE = re.compile(r"(^|[\s=:'\"])(/[A-Za-z0-9_.~-]+/|[A-Za-z]:\\)")


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_results_exist():
    assert len(RESULTS) >= 17


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_result_has_no_absolute_path(path):
    bad = [s for s in _strings(json.loads(path.read_text())) if ABSOLUTE.search(s)]
    assert not bad, f"{path.relative_to(ROOT)} records absolute paths: {bad[:3]}"


def test_results_writer_makes_paths_portable():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from validation_common import portable
    finally:
        sys.path.remove(str(ROOT / "examples"))
    text = f"python {ROOT}/examples/validate_trap.py n2 --output-dir /scratch/me/runs/trap_n2 --x=/a/b"
    out = portable({"command": text, "dirs": [f"{ROOT}/runs/x"]})
    assert out == {"command": "python examples/validate_trap.py n2 --output-dir <outside>/runs/trap_n2 "
                              "--x=<outside>/a/b", "dirs": ["runs/x"]}
    assert not ABSOLUTE.search(out["command"])

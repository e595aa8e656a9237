"""Run the hostile-user set and print its totals: tried, clear, unclear, traceback, silent, lost.

Usage (from the repository root):
    python tests/hostile_totals.py                 # the set: hostile round 2 + the round 1 reliability files
    python tests/hostile_totals.py -- -k rle       # extra pytest arguments after "--"

Each test is one case (a parametrised test: one case per parameter set) and asserts a clear error
or a correct result: exit code, no traceback, the message naming the bad value and the fix, no user
file touched. A passing case is "clear"; a failing one is sorted by what its assertion saw: a
traceback in the output, a run that succeeded where a refusal was due ("silent", `assert 0 == ...`
on the exit code), a user's file written over or left behind ("lost", the test's name says it
guards files), anything else "unclear". The same command on an older package (PYTHONPATH pointing
at its checkout) gives the "before" column.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SET = sorted(str(p.relative_to(ROOT)) for pattern in ("test_hostile_*.py", "test_reliability_*.py")
             for p in (ROOT / "tests").glob(pattern))
# Names of the cases that guard a user's files (a failure there is a lost file, not a message).
LOST = re.compile(r"users?_file|leaves_no|write[sn]?_over|replace|overwrit|half_written|partial")


def category(name: str, failure: str) -> str:
    """The probe's class of one failed case."""
    if LOST.search(name):
        return "lost"
    if "Traceback" in failure:
        return "traceback"
    if re.search(r"assert 0 ==|DID NOT RAISE", failure):
        return "silent"
    return "unclear"


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "set.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "auto", "-p", "no:cacheprovider",
                        f"--junitxml={report}", *SET, *extra], cwd=ROOT)
        cases = ET.parse(report).getroot().iter("testcase")
        totals, failed = Counter(), []
        for case in cases:
            problem = case.find("failure")
            problem = case.find("error") if problem is None else problem  # an Element with no children is falsy
            skipped = case.find("skipped") is not None
            totals["tried"] += 1
            if skipped:
                totals["skipped"] += 1
            elif problem is None:
                totals["clear"] += 1
            else:
                kind = category(case.get("name", ""), (problem.get("message") or "") + (problem.text or ""))
                totals[kind] += 1
                failed.append(f"  {kind:9} {case.get('classname')}::{case.get('name')}")
    print("\n".join(failed))
    print(f"files: {', '.join(SET)}")
    print("totals: " + ", ".join(f"{k} {totals[k]}" for k in
                                 ("tried", "clear", "unclear", "traceback", "silent", "lost", "skipped")))
    return 0 if totals["tried"] == totals["clear"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

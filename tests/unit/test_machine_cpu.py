"""The benchmarks' split of the machine's CPU by role counts a process that exits before the end."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.driver_cost import MachineCpu

BURN = "import time\nend = time.process_time() + 1.5\nwhile time.process_time() < end:\n    pass\n"


def test_a_child_that_exits_meanwhile_keeps_its_cpu():
    with MachineCpu() as machine:
        child = subprocess.Popen([sys.executable, "-c", BURN])
        assert child.wait(timeout=30) == 0  # read once a second while it burned; gone before the last reading
    spent = machine.by_role()
    # what the last reading before its exit saw (the test session's own servers, if any, count under their roles)
    assert 0.3 <= spent["other"] <= 2.0

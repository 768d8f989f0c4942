"""The benchmarks' split of the machine's CPU by role counts a process that exits before the end."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.driver_cost import MachineCpu

BURN = "import time\nend = time.process_time() + 3.0\nwhile time.process_time() < end:\n    pass\n"


def test_a_child_that_exits_meanwhile_keeps_its_cpu():
    with MachineCpu() as machine:
        child = subprocess.Popen([sys.executable, "-c", BURN])
        time.sleep(4.0)  # readings once a second while it burns; it exits between two of them
        assert child.wait(timeout=30) == 0
    spent = machine.by_role()
    # what the last reading before its exit saw (the test session's own servers, if any, count under their roles)
    assert 1.5 <= spent["other"] <= 3.5

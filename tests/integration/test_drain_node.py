"""`cluster/local_workers.py`'s `drain_node` goes through Ray's `ray drain-node` command (Ray has no drain call in its
Python API): against a real two-node Ray, an idle worker drained as pre-empted stops at once, and a bad node id is
refused with Ray's reason. (test_local_cluster.py's breathing cluster drains a busy worker mid-search.)"""

from __future__ import annotations

import time

import pytest
from ray.cluster_utils import Cluster

from cluster.local_workers import drain_node

pytestmark = pytest.mark.integration


def test_an_idle_drained_worker_stops_and_a_bad_node_id_is_refused():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        accepted, why = drain_node(cluster.address, "zz", 5, "test")
        assert not accepted and "Invalid hex ID" in why, why
        assert drain_node(cluster.address, worker.node_id, 30, "test") == (True, "")
        deadline = time.monotonic() + 20  # long before the drain's deadline: an idle node has nothing to wait for
        while worker.remaining_processes_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not worker.remaining_processes_alive(), "the drained worker still runs"
    finally:
        cluster.shutdown()

"""`cluster/local.py`: an MLflow server, a Ray head and two Ray worker nodes as local processes, brought up once
for this module and shared by its tests, in order: what `up` prints and guards; every socket it listens on is in
docs/cluster.md's table; a search through RAY_ADDRESS and MLFLOW_TRACKING_URI, started on one worker, runs on the
workers, tracked with its artifacts, while two workers join and one is drained away; a search interrupted and
resumed, a search whose tracking server goes away and comes back, a search that loses a worker node; `down` leaves
no process behind. A taken port is refused before anything starts."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from cluster_helpers import LOCAL, clean_env, dashboard_get, local, read_state, search_id_of, start_driver, wait_until
from mlflow.tracking import MlflowClient
from sockets import Listener
from test_listening_ports import (
    DRIVER,
    SESSION_PORTS,
    STATE_PORTS,
    answers_without_token,
    categories,
    lineage,
    listening_table,
    refused_without_token,
    resolve,
    session_ports,
    snapshot,
)

from cluster.local import live_pids
from cluster.local_workers import kill_hard
from cluster.private_mlflow import start_mlflow
from cluster.processes import free_port, process_alive, stop_process_group, stop_processes
from search.common import contract as c

ROOT = Path(__file__).resolve().parents[2]


def test_ray_node_refuses_to_start_without_a_token():
    env = {k: v for k, v in clean_env().items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "cluster" / "ray_node.py"), "head", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no Ray token" in result.stderr and "Traceback" not in result.stderr


def test_ray_node_gives_each_node_its_resources():
    env = {**clean_env(), "RAY_AUTH_TOKEN": "x" * 64}
    result = subprocess.run(
        [sys.executable, str(ROOT / "cluster" / "ray_node.py"), "worker", "--address", "ray-head:6379"]
        + ["--num-cpus", "1", "--memory", "2g", "--object-store-memory", "256m", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    assert command[1:3] == ["start", "--block"] and "--head" not in command
    for flag, value in {"--address": "ray-head:6379", "--num-cpus": "1", "--memory": str(2 * 2**30)}.items():
        assert command[command.index(flag) + 1] == value
    assert command[command.index("--object-store-memory") + 1] == str(256 * 2**20)


@pytest.mark.integration
def test_taken_port_is_refused_before_anything_starts(tmp_path):
    state_dir = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = ["--mlflow-port", str(free_port()), "--ray-port", str(free_port()), "--dashboard-port", str(port)]
        result = local(state_dir, "up", *ports, "--ray-client-port", str(free_port()), timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--dashboard-port" in lines[0], result.stderr
    assert not (state_dir / "state.json").exists(), "nothing may be started or recorded"


@pytest.mark.integration
def test_up_exports_its_addresses_guards_the_dashboard_and_refuses_a_second_up(local_cluster):
    state_dir, ports, exports = local_cluster["state_dir"], local_cluster["ports"], local_cluster["exports"]
    assert exports["RAY_ADDRESS"] == f"127.0.0.1:{ports['ray']}"
    assert exports["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{ports['mlflow']}"
    assert exports["RAY_AUTH_MODE"] == "token"
    token_path = Path(exports["RAY_AUTH_TOKEN_PATH"])
    token = token_path.read_text().strip()
    assert token_path.stat().st_mode & 0o077 == 0, "the token file must be private"
    assert token_path.parent == state_dir.resolve()

    status = local(state_dir, "status", timeout=60)
    assert status.returncode == 0 and "3 of 3" in status.stdout, status.stdout + status.stderr
    again = local(state_dir, "up", timeout=60)
    assert again.returncode != 0 and "already up" in again.stderr

    # The dashboard asks for the token; with it, it lists a head without CPUs and two workers with one each.
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        dashboard_get(f"{dashboard}/api/v0/nodes", None)
    assert refused.value.code == 401
    nodes = dashboard_get(f"{dashboard}/api/v0/nodes?limit=100", token)["data"]["result"]["result"]
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    heads = [n for n in alive if n["is_head_node"]]
    assert len(heads) == 1 and len(alive) == 3
    assert heads[0]["resources_total"].get("CPU", 0) == 0
    assert all(n["resources_total"]["CPU"] == 1 for n in alive if not n["is_head_node"])


@pytest.mark.integration
def test_every_listening_socket_is_in_the_table_with_its_bind_address(local_cluster, tmp_path):
    """With a driver and a trial-like actor running, every TCP socket the cluster's processes listen on is covered
    by one row of docs/cluster.md's "What listens where" table, with that row's bind address, and a row that says
    `token` refuses a request without the token."""
    rows = listening_table(ROOT / "docs" / "cluster.md")
    state, ports, exports = local_cluster["state"], local_cluster["ports"], local_cluster["exports"]
    (tmp_path / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=local_cluster["env"],
    )
    try:
        assert driver.stdout.readline().strip() == "pong", "the driver's actor did not run"
        token = Path(exports["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
        nodes = dashboard_get(f"http://127.0.0.1:{ports['dashboard']}/api/v0/nodes", token)["data"]["result"]
        node_ips = {n["node_ip"] for n in nodes["result"]}
        assert len(node_ips) == 1, node_ips
        node_ip = node_ips.pop()
        known = {flag: {state["ports"][key]} for flag, key in STATE_PORTS.items()} | session_ports(
            state["ray_temp_root"]
        )
        assert known["--dashboard-agent-listen-port"] == {p["ports"]["dashboard_agent"] for p in state["processes"][1:]}
        expected = {p for flag in (*STATE_PORTS, *SESSION_PORTS) for p in known[flag]}

        listeners: list[Listener] = []

        def all_listening() -> bool:  # agents open some ports a moment after their node joins
            listeners[:] = snapshot(state, driver.pid)
            return not expected - {x.port for x in listeners}

        wait_until(all_listening, "socket on every port the cluster recorded", 60)

        by_socket: dict[tuple[int, int], list[Listener]] = defaultdict(list)
        for listener in listeners:
            by_socket[listener.pid, listener.port].append(listener)
        seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (pid, port), group in sorted(by_socket.items()):
            texts = ["(driver)"] if group[0].name == "(driver)" else lineage(pid)
            row = resolve(rows, texts, port, known)
            bound = categories({x.ip for x in group}, node_ip)
            assert bound == row.binds, f"{row.listener} (pid {pid}, port {port}) binds to {sorted(bound)}"
            host = "127.0.0.1" if bound & {"127.0.0.1", "all interfaces"} else node_ip
            seen[row.listener].append((host, port))
        assert set(seen) == {r.listener for r in rows}, (
            f"rows with no socket: {set(r.listener for r in rows) - set(seen)}"
        )

        for row in rows:  # what the table says guards each listener
            for host, port in seen[row.listener]:
                if row.guard == "token":
                    assert refused_without_token(row.protocol, host, port), f"{row.listener} :{port} answered"
                else:
                    assert answers_without_token(host, port), f"{row.listener} :{port} did not answer"
    finally:
        driver.stdin.close()
        stop_processes([driver.pid], timeout=15)


def trial_runs(client: MlflowClient, experiment: str, search_id: str) -> list:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}'"
    return client.search_runs([found.experiment_id], query, max_results=1000)


def ended(client: MlflowClient, experiment: str, search_id: str) -> int:
    return sum(r.info.status != "RUNNING" for r in trial_runs(client, experiment, search_id))


def finished(client: MlflowClient, experiment: str, search_id: str) -> int:
    return sum(r.info.status == "FINISHED" for r in trial_runs(client, experiment, search_id))


def alive_nodes(local_cluster) -> list[dict]:
    """The cluster's alive nodes, as the dashboard's state API lists them (with the token)."""
    token = Path(local_cluster["exports"]["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    url = f"http://127.0.0.1:{local_cluster['ports']['dashboard']}/api/v0/nodes?limit=100"
    return [n for n in dashboard_get(url, token)["data"]["result"]["result"] if n["state"] == "ALIVE"]


def is_trial_actor(actor: dict) -> bool:
    """A Tune trial's actor, as the state API lists it: `ImplicitFunc` alive, `wrap_function.<locals>.ImplicitFunc`
    once dead."""
    return actor["class_name"].rsplit(".", 1)[-1] == "ImplicitFunc"


def worker_node(local_cluster, number: int) -> str:
    """The node id of worker `number`, once the dashboard's node list (which can lag the GCS) shows it alive."""
    alive: dict[str, str] = {}

    def listed() -> bool:
        alive.update({n["labels"].get("worker", ""): n["node_id"] for n in alive_nodes(local_cluster)})
        return str(number) in alive

    wait_until(listed, f"worker {number} alive in the dashboard's node list", 30)
    return alive[str(number)]


ELASTIC_TRIALS = 20
# A trial of about 10 s on one CPU, over 3 folds of digits: still running when the test finds and kills its node;
# then a cheap one.
SLOW_THEN_CHEAP = [
    {"model": "gradient_boosting", "feature_set": "squared", "learning_rate": 0.01, "max_iter": 60,
     "max_leaf_nodes": 64, "l2_regularization": 1e-6},
    {"model": "logistic_regression", "feature_set": "squared", "C": 1.0, "class_weight": "none"},
]  # fmt: skip
ELASTIC = ["--dataset", "digits", "--models", "random_forest,svm", "--scheduler", "asha", "--cv-folds", "4"]
# Six of the largest forests first (a few seconds each on one CPU): trials still wait when the new workers join.
LARGE_FORESTS = [{"model": "random_forest", "feature_set": "squared", "n_estimators": 300 - i, "max_depth": 20,
                  "min_samples_leaf": 1, "max_features": "sqrt"} for i in range(6)]  # fmt: skip


@pytest.mark.integration
@pytest.mark.chaos  # nodes lost and added: in the chaos tier, beside the chaos test
@pytest.mark.fault("two worker nodes added mid-search (add-worker), then one drained away (remove-worker)")
def test_a_search_on_a_breathing_cluster_runs_on_its_workers_with_its_figures(local_cluster, tmp_path):
    """A search from the host, through the exported variables only, while the cluster breathes: started on one
    worker (worker 2 drained first), workers 3 and 4 added at once after the first trial's end, each taking trials
    within 15 s of joining, then worker 1 drained away mid-search (none of it counts against `max_failures`).
    Trials run on workers only; the figures of the best trial of each family go through the server into its
    artifact store."""
    exports, ports, state_dir = local_cluster["exports"], local_cluster["ports"], local_cluster["state_dir"]
    token = Path(exports["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    nodes = alive_nodes(local_cluster)
    assert len([n for n in nodes if not n["is_head_node"]]) == 2
    idle = local(state_dir, "remove-worker", "--worker", "2", "--grace", "5", timeout=120)
    assert idle.returncode == 0 and "worker 2 removed" in idle.stdout, idle.stdout + idle.stderr
    head = next(n["node_id"] for n in nodes if n["is_head_node"])
    client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
    (points := tmp_path / "forests.json").write_text(json.dumps(LARGE_FORESTS))
    argv = [*ELASTIC, "--experiment", "it-elastic", "--num-samples", str(ELASTIC_TRIALS), "--points-to-evaluate"]
    argv += [str(points), "--storage-path", str(tmp_path / "ray_results")]
    driver = start_driver(argv, env=local_cluster["env"], cwd=tmp_path)
    joined: dict[str, float] = {}
    try:
        search_id = search_id_of(driver)
        wait_until(lambda: ended(client, "it-elastic", search_id) >= 1, "a trial's end", 180, driver)
        adding = [subprocess.Popen([*LOCAL, "add-worker", "--state-dir", str(state_dir)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=clean_env()) for _ in range(2)]  # fmt: skip
        for added in adding:  # both at once: each waits for its node, then says its number
            out, err = added.communicate(timeout=150)
            at = time.time()
            number = int(re.search(r"worker (\d+) joined", out)[1]) if added.returncode == 0 else 0
            assert number in (3, 4), f"add-worker exited {added.returncode}: {out[-1000:]}{err[-2000:]}"
            joined[worker_node(local_cluster, number)] = at
        removed = local(state_dir, "remove-worker", "--worker", "1", "--grace", "5", timeout=120)
        assert removed.returncode == 0, removed.stderr
        assert "worker 1 draining" in removed.stdout and "worker 1 removed" in removed.stdout
        print(removed.stdout)  # idle (its trial finished) or at its deadline (its trial moved): both are fine
        out, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    runs = trial_runs(client, "it-elastic", search_id)
    assert sorted(int(r.data.tags[c.TRIAL_INDEX]) for r in runs) == list(range(ELASTIC_TRIALS))
    assert all(r.info.status == "FINISHED" and r.data.tags[c.OUTCOME] in (c.COMPLETED, c.STOPPED) for r in runs)
    for node, at in joined.items():
        starts = [r.info.start_time / 1000 for r in runs if r.data.tags.get(c.NODE) == node]
        assert starts, f"no trial ran on the node that joined at {at}:\n{out[-3000:]}"
        assert min(starts) - at <= 15, f"the first trial on a new node started {min(starts) - at:.1f} s after it joined"
    used = {r.data.tags[c.NODE] for r in runs if c.NODE in r.data.tags}  # a node that re-registers counts anew
    assert set(joined) <= used and len(used) >= 3 and head not in used, used
    experiment = client.get_experiment_by_name("it-elastic")
    parent = client.search_runs(
        [experiment.experiment_id], f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}'"
    )[0]
    assert parent.data.metrics[c.NODES_USED] == len(used) and f"on {len(used)} nodes" in out
    status = local(state_dir, "status", timeout=60)
    assert status.returncode == 0 and "3 of 3" in status.stdout, status.stdout

    # The figures (the best trial of each model family) went through the server into its artifact store.
    store = state_dir / "mlflow" / "artifacts"
    completed = [r for r in runs if r.data.tags[c.OUTCOME] == c.COMPLETED]
    drawn = [r for r in completed if client.list_artifacts(r.info.run_id)]
    assert drawn and all(c.CONFUSION_MATRIX in r.data.tags for r in completed)
    for trial in drawn:
        assert [a.path for a in client.list_artifacts(trial.info.run_id)] == [c.CONFUSION_MATRIX_PNG]
        stored = store / experiment.experiment_id / trial.info.run_id / "artifacts" / c.CONFUSION_MATRIX_PNG
        assert stored.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stored

    # The dashboard agrees: the trial actors ran on worker nodes, none on the head.
    actors = dashboard_get(f"{dashboard}/api/v0/actors?limit=1000&detail=1", token)["data"]["result"]["result"]
    trial_nodes = {a["node_id"] for a in actors if is_trial_actor(a)}
    assert used <= trial_nodes and head not in trial_nodes


# Enough trials that the interrupt, sent once 3 have finished, lands before the last one ends however cheap they are.
TRIALS = 12


@pytest.mark.integration
@pytest.mark.fault("SIGINT to the driver mid-search, then --resume")
def test_interrupted_search_resumes_without_loss_or_duplicates(local_cluster, tmp_path):
    """Ctrl-C in the middle of a search, then `--resume`: nothing lost, nothing duplicated, the same parent run."""
    env = local_cluster["env"]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    argv = ["--experiment", "it-resume", "--num-samples", str(TRIALS), "--max-concurrent", "1"]
    argv += ["--models", "knn,logistic_regression,svm", "--storage-path", str(tmp_path)]
    argv += ["--plateau", "50"]  # never reached in 12 trials: the resumed search replays its count
    driver = start_driver(argv, env=env, cwd=tmp_path)
    try:
        search_id = search_id_of(driver)
        wait_until(lambda: finished(client, "it-resume", search_id) >= 3, "3 finished trials", 120, driver)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130 and f"--resume {search_id}" in err
    before = trial_runs(client, "it-resume", search_id)
    parent = client.search_runs(
        [before[0].info.experiment_id], filter_string=f"tags.search_id = '{search_id}' and tags.run_type = 'search'"
    )
    assert len(parent) == 1 and parent[0].info.status == "KILLED"
    assert all(r.info.status in ("FINISHED", "KILLED") for r in before) and len(before) < TRIALS
    finished_before = {r.info.run_id: r.info.end_time for r in before if r.info.status == "FINISHED"}

    resumed = subprocess.run(
        [sys.executable, str(ROOT / "search" / "run.py"), "--resume", search_id, "--storage-path", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = trial_runs(client, "it-resume", search_id)
    indices = Counter(int(r.data.tags["trial_index"]) for r in after)
    assert sorted(indices) == list(range(TRIALS)) and set(indices.values()) == {1}
    assert all(r.info.status == "FINISHED" and r.data.tags["outcome"] == "completed" for r in after)
    assert set(finished_before) <= {r.info.run_id for r in after}
    for run in after:  # finished trials were not rerun: their runs were not touched again
        if run.info.run_id in finished_before:
            assert run.info.end_time == finished_before[run.info.run_id]
    again = client.get_run(parent[0].info.run_id)
    assert again.info.status == "FINISHED" and again.data.metrics["trials_finished"] == TRIALS
    assert again.data.tags["resumed"] == "true"


@pytest.mark.integration
@pytest.mark.fault("mlflow server killed mid-search, then started again")
def test_search_survives_a_tracking_server_restart(local_cluster, tmp_path):
    """The tracking server goes away mid-search and comes back: no trial's results are lost or duplicated."""
    port, data_dir, storage = free_port(), tmp_path / "server", tmp_path / "ray_results"
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow(data_dir, port)[0]
    argv = ["--tracking-uri", uri, "--experiment", "it-outage", "--num-samples", "8", "--max-concurrent", "1"]
    driver = start_driver([*argv, "--models", "knn,logistic_regression,svm", "--storage-path", str(storage)],
                          env=local_cluster["env"], cwd=tmp_path)  # fmt: skip
    try:
        search_id = search_id_of(driver)
        client = MlflowClient(uri)
        wait_until(lambda: finished(client, "it-outage", search_id) >= 2, "2 tracked trials", 120, driver)
        stop_process_group(server.pid)  # the server goes away mid-search for as long as it takes to start again ...
        server = start_mlflow(data_dir, port)[0]  # ... and comes back on the same port with the same data
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-2000:]
        runs = client.search_runs([client.get_experiment_by_name("it-outage").experiment_id],
                                  f"tags.search_id = '{search_id}'", max_results=1000)  # fmt: skip
        trials = [r for r in runs if r.data.tags["run_type"] == "trial"]
        assert Counter(int(r.data.tags["trial_index"]) for r in trials) == Counter(range(8))
        assert all(r.info.status == "FINISHED" and "val_accuracy" in r.data.metrics for r in trials)
        assert all(len(json.loads(r.data.tags["confusion_matrix"])) == 3 for r in trials)  # the numbers, on every run
        parent = next(r for r in runs if r.data.tags["run_type"] == "search")
        assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == 8
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_process_group(server.pid)


@pytest.mark.integration
@pytest.mark.chaos  # nodes lost and added: in the chaos tier, beside the chaos test
@pytest.mark.fault("a Ray worker node SIGKILLed mid-search")
def test_search_survives_a_lost_worker_node(local_cluster, tmp_path):
    """A Ray worker node dies (SIGKILL) mid-search while it runs a trial: the search still ends with every trial
    completed, the lost attempt is on its trial's run (not its failure: it completes), and no run is FINISHED
    without its metrics. One trial at a
    time, a slow one first, so the one live trial actor is that trial's and it is still fitting when its node dies."""
    env, points = local_cluster["env"], tmp_path / "slow.json"
    points.write_text(json.dumps(SLOW_THEN_CHEAP))
    argv = ["--experiment", "it-worker-loss", "--dataset", "digits", "--feature-sets", "squared"]
    argv += ["--models", "gradient_boosting,logistic_regression", "--num-samples", "2", "--max-concurrent", "1"]
    argv += ["--cv-folds", "3", "--points-to-evaluate", str(points), "--storage-path", str(tmp_path / "ray_results")]
    driver = start_driver(argv, env=env)
    try:
        search_id = search_id_of(driver)
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        busy: list[str] = []  # the worker that holds the slow trial's actor
        token = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
        actors_url = f"http://127.0.0.1:{local_cluster['ports']['dashboard']}/api/v0/actors?limit=1000&detail=1"

        def slow_trial_runs_on_a_worker() -> bool:
            runs = trial_runs(client, "it-worker-loss", search_id)
            if not any(r.data.tags.get(c.TRIAL_INDEX) == "0" and r.info.status == "RUNNING" for r in runs):
                return False
            actors = dashboard_get(actors_url, token)["data"]["result"]["result"]
            hosts = {a["node_id"] for a in actors if is_trial_actor(a) and a["state"] == "ALIVE"}
            workers = {n["node_id"]: n["labels"].get("worker") for n in alive_nodes(local_cluster)}
            busy[:] = [workers[n] for n in hosts if workers.get(n)]
            return len(busy) == 1

        wait_until(slow_trial_runs_on_a_worker, "the slow first trial running on a worker", 180, driver)
        assert kill_hard(read_state(local_cluster["state_dir"]), f"ray-worker-{busy[0]}") > 0
        out, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err[-3000:]
        assert re.search(r"^trial 0000-\S+: attempt 1 lost with its actor, running it again", out, re.M), out[-3000:]
        assert "Trial task failed" not in out + err, "Tune's traceback for a lost actor is shown"
        trials = trial_runs(client, "it-worker-loss", search_id)
        assert sorted(int(r.data.tags["trial_index"]) for r in trials) == list(range(2))
        for run in trials:
            assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "completed"
            assert {"val_accuracy", "val_f1", "fit_time_s"} <= set(run.data.metrics)
        [slow] = [r for r in trials if r.data.tags[c.TRIAL_INDEX] == "0"]
        assert int(slow.data.tags.get(c.LOST_ATTEMPTS, 0)) == 1, "the slow trial lost no attempt"
    finally:
        if driver.poll() is None:
            driver.kill()


@pytest.mark.integration
def test_down_stops_every_process_of_the_cluster(local_cluster):
    state_dir, state = local_cluster["state_dir"], read_state(local_cluster["state_dir"])
    token_path = Path(local_cluster["exports"]["RAY_AUTH_TOKEN_PATH"])
    pids = live_pids(state)  # process trees and groups, and whatever runs in its Ray temp dir
    assert len(pids) >= 8, pids
    down = local(state_dir, "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert not [p for p in pids if process_alive(p)], "processes of the cluster outlived `down`"
    assert not token_path.exists() and not (state_dir / "state.json").exists()
    assert not Path(state["ray_temp_root"]).exists()

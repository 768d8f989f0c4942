"""A compose project driven as README tells a user: `docker compose ...` in a clean copy of the repository (its
tracked files only, so no `.env`), searches through `docker compose exec`, checks through the published ports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3  # ray-worker containers of the shared cluster
SEARCH_LINE = re.compile(r"^(?:search|resuming) (\w+): experiment '([^']+)', parent run (\w+)", re.M)


def clean_clone(target: Path) -> Path:
    """The repository's tracked files (as they are in the work tree) copied to `target` and committed there: a
    user's fresh clone, with no .env and a commit of its own."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "the code under test")
    return target


def git(folder: Path, *args: str) -> str:
    """`git ARGS` in `folder` (as a test user, whatever git config the machine has); its output."""
    ident = ["-c", "user.name=compose test", "-c", "user.email=compose@test.invalid"]
    return subprocess.run(["git", *ident, *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Project:
    """One compose project: its folder, name, files, environment and the compose command."""

    folder: Path
    name: str
    compose: list[str]
    env: dict[str, str]
    files: list[str] = field(default_factory=lambda: ["compose.yaml"])

    def run(
        self, *args: str, timeout: float = 600, check: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """`docker compose -p NAME -f FILE... ARGS` in the project's folder (`env`: variables added for this call)."""
        files = [x for f in self.files for x in ("-f", f)]
        result = subprocess.run(
            [*self.compose, "-p", self.name, *files, *args],
            cwd=self.folder,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, f"{' '.join(args)}: exit {result.returncode}\n{tail(result)}"
        return result

    def popen(self, *args: str) -> subprocess.Popen:
        """`docker compose ... ARGS` started in the background, output piped."""
        files = [x for f in self.files for x in ("-f", f)]
        return subprocess.Popen(
            [*self.compose, "-p", self.name, *files, *args],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def containers(self, service: str) -> list[str]:
        """Names of the service's running containers."""
        listed = self.run("ps", "-q", service, check=True).stdout.split()
        if not listed:
            return []
        inspected = subprocess.run(
            ["docker", "inspect", *listed], env=self.env, capture_output=True, text=True, check=True
        )
        return [c["Name"].lstrip("/") for c in json.loads(inspected.stdout) if c["State"]["Running"]]

    def mounts(self, container: str) -> list[dict]:
        """The container's mounts, as `docker inspect` gives them."""
        inspected = subprocess.run(
            ["docker", "inspect", container], env=self.env, capture_output=True, text=True, check=True
        )
        return json.loads(inspected.stdout)[0]["Mounts"]


def stop_exec_leftovers(project: str) -> None:
    """Podman leaves the conmon of a finished `exec` waiting on its removed container: stop it, by PID."""
    from cluster.processes import processes_mentioning, stop_processes

    for separator in ("_", "-"):
        stop_processes([], processes_mentioning(f"-n\0{project}{separator}"), timeout=10)


def tail(result: subprocess.CompletedProcess, chars: int = 3000) -> str:
    return f"{result.stdout[-chars:]}\n{result.stderr[-chars:]}"


@dataclass
class Cluster:
    """The shared compose cluster: the project, its published ports and the generated credentials."""

    project: Project
    mlflow_port: int
    dashboard_port: int
    secrets: dict[str, str]
    shell: Shell | None = None  # README's terminal, when the compose command is README's `docker compose`

    @property
    def tracking(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def token(self) -> str:
        return self.secrets["RAY_AUTH_TOKEN"]

    def mlflow_client(self):
        """An MlflowClient through the published port, logged in with the generated admin password."""
        import os

        from mlflow.tracking import MlflowClient

        os.environ["MLFLOW_TRACKING_USERNAME"] = self.secrets["MLFLOW_TRACKING_USERNAME"]
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self.secrets["MLFLOW_TRACKING_PASSWORD"]
        return MlflowClient(self.tracking)

    def search_argv(self, experiment: str, samples: int, *extra: str) -> list[str]:
        """`exec -T ray-head python search/run.py ...` on the digits data."""
        argv = ["exec", "-T", "ray-head", "python", "search/run.py", "--experiment", experiment]
        argv += ["--num-samples", str(samples), "--dataset", "digits", "--cv-folds", "3"]
        return [*argv, "--models", "random_forest,svm,logistic_regression", *extra]

    def search(self, experiment: str, samples: int, *extra: str, timeout: float = 900) -> tuple[str, str]:
        """Run a search in the head; (search id, parent run id)."""
        result = self.project.run(*self.search_argv(experiment, samples, *extra), timeout=timeout)
        assert result.returncode == 0, f"search failed:\n{tail(result)}"
        found = SEARCH_LINE.search(result.stdout)
        assert found, result.stdout[-2000:]
        return found[1], found[3]

    def dashboard_get(self, path: str, token: str | None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"{self.dashboard}{path}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def alive_nodes(self) -> list[dict]:
        try:
            nodes = self.dashboard_get("/api/v0/nodes?limit=100", self.token)["data"]["result"]["result"]
        except (OSError, ValueError, KeyError):
            return []
        return [n for n in nodes if n["state"] == "ALIVE"]

    def wait_for_nodes(self, count: int, timeout: float = 240) -> list[dict]:
        """The alive nodes once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while len(nodes := self.alive_nodes()) < count:
            assert time.monotonic() < deadline, f"{len(nodes)} of {count} Ray nodes alive"
            time.sleep(2)
        return nodes

    def trials(self, experiment: str, search_id: str) -> list:
        """The trial runs of one search, read through the published port."""
        client = self.mlflow_client()
        found = client.get_experiment_by_name(experiment)
        query = f"tags.search_id = '{search_id}' and tags.run_type = 'trial'"
        return client.search_runs([found.experiment_id], query, max_results=1000) if found else []

    def psql(self, sql: str) -> str:
        """One query in the PostgreSQL tracking store, as the compose user, rows as text."""
        argv = ["exec", "-T", "postgres", "psql", "-U", "mlflow", "-d", "mlflow", "-At", "-c", sql]
        return self.project.run(*argv, check=True).stdout.strip()


def parse_secrets(text: str) -> dict[str, str]:
    """The `export NAME=value` lines of `cluster/credentials.py show`, as a shell would read them."""
    import shlex

    return {k: shlex.split(v)[0] for k, v in re.findall(r"^export (\w+)=(.+)$", text, re.M)}


def readme_compose_block() -> list[str]:
    """The commands of README's compose block, in order, as a user pastes them (comment lines dropped)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"```bash\n(docker compose up -d --build[^\n]*\n.*?)```", text, re.S)
    assert found, "README has no bash block starting with `docker compose up -d --build`"
    return [line for line in found[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]


@dataclass
class Shell:
    """README's commands run one by one in the project's folder, each as written but for the published ports, with
    what the earlier ones exported (a user's terminal)."""

    folder: Path
    env: dict[str, str]
    ports: dict[int, int]  # a default port written in README -> the free port published here
    exported: Path = field(init=False)

    def __post_init__(self) -> None:
        self.exported = self.folder.parent / f"{self.folder.name}-shell.env"  # outside the clone: it stays clean
        self.exported.write_text("")

    def here(self, line: str) -> str:
        """`line` with README's default ports replaced by the ones this project published."""
        for default, port in self.ports.items():
            line = re.sub(rf"(127\.0\.0\.1:|-p ){default}\b", rf"\g<1>{port}", line)
        return line

    def script(self, line: str) -> str:
        return f"source {self.exported}\n{self.here(line)}\nstatus=$?\nexport -p > {self.exported}\nexit $status\n"

    def run(self, line: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """One README command, to its end."""
        return subprocess.run(["bash", "-c", self.script(line)], cwd=self.folder, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)  # fmt: skip

    def start(self, line: str) -> subprocess.Popen:
        """One README command that serves until stopped, in its own process group."""
        return subprocess.Popen(["bash", "-c", self.script(line)], cwd=self.folder, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip

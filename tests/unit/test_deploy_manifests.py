"""deploy/kuberay/, checked statically (nothing here runs Kubernetes): the YAML parses; the RayCluster and the
MLflow server run the project's images and `cluster/` entrypoints with flags those entrypoints accept; the RayJob
runs search/run.py with flags it accepts; rayVersion is the pinned Ray; secrets come from Secrets, none committed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster import ray_node

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kuberay"
SECRET_WORDS = ("TOKEN", "PASSWORD", "SECRET")


def documents() -> list[dict]:
    """Every object of every manifest, kustomization.yaml included."""
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for d in documents() if d.get("kind") == kind]


def pod_specs() -> list[dict]:
    """The pod specs of every workload: RayCluster head and workers, Deployments, StatefulSets."""
    specs = []
    for cluster in by_kind("RayCluster"):
        specs.append(cluster["spec"]["headGroupSpec"]["template"]["spec"])
        specs += [g["template"]["spec"] for g in cluster["spec"]["workerGroupSpecs"]]
    specs += [d["spec"]["template"]["spec"] for d in by_kind("Deployment") + by_kind("StatefulSet")]
    return specs


def containers() -> list[dict]:
    return [c for spec in pod_specs() for c in spec["containers"]]


def pinned(package: str) -> str:
    """The version requirements.txt pins for `package`."""
    text = (ROOT / "requirements.txt").read_text()
    return re.search(rf"^{package}(\[[^\]]*\])?==(\S+)", text, re.M)[2]


def compose_image(dockerfile: str) -> str:
    """The image name compose.yaml gives the image built from `dockerfile`."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for key, value in compose.items():
        if key.startswith("x-") or key == "services":
            for service in value.values() if key == "services" else [value]:
                build = service.get("build") if isinstance(service, dict) else None
                if isinstance(build, dict) and build.get("dockerfile") == dockerfile and service.get("image"):
                    return service["image"]
    raise AssertionError(f"compose.yaml builds no image from {dockerfile}")


def help_text(entrypoint: list[str]) -> str:
    """What `python <entrypoint> --help` prints."""
    usage = subprocess.run([sys.executable, *entrypoint, "--help"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr
    return usage.stdout


def assert_flags_exist(argv: list[str], usage: str) -> None:
    """Every `--flag` of `argv` is one `usage` lists in full (argparse alone would accept a prefix)."""
    for flag in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage), f"no flag {flag} in:\n{usage}"


def test_every_manifest_parses_into_named_objects():
    docs = documents()
    kinds = {d["kind"] for d in docs}
    assert {"RayCluster", "RayJob", "Deployment", "StatefulSet", "Service", "Kustomization"} <= kinds, kinds
    for doc in docs:
        assert doc["apiVersion"] and (doc["kind"] == "Kustomization" or doc["metadata"]["name"]), doc
    listed = set(by_kind("Kustomization")[0]["resources"]) | {"rayjob.yaml", "kustomization.yaml"}
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")}, "a manifest kustomization.yaml does not list"


def test_ray_cluster_runs_the_pinned_ray_in_the_project_image():
    (cluster,) = by_kind("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["spec"]["rayVersion"] == pinned("ray")
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    image = compose_image("Dockerfile.ray")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    groups = cluster["spec"]["workerGroupSpecs"]
    assert groups and all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in groups)
    for container, role in [(head, "head")] + [(g["template"]["spec"]["containers"][0], "worker") for g in groups]:
        assert container["image"] == image
        command = container["command"]
        assert command[:3] == ["python", "cluster/ray_node.py", role], command
        args = ray_node.build_parser().parse_args(command[2:])  # flags the entrypoint really accepts
        assert_flags_exist(command[3:], help_text([str(ROOT / "cluster" / "ray_node.py"), role]))
        limits = container["resources"]["limits"]
        assert args.num_cpus <= float(limits["cpu"]), "the node offers more CPUs than its container has"
        memory = args.memory + (args.object_store_memory or 0)
        assert memory <= ray_node.parse_size(limits["memory"].replace("Gi", "g").replace("Mi", "m"))
        for probe in (container["readinessProbe"], container["livenessProbe"]):  # on the node's agent, no token
            assert probe["httpGet"] == {"path": "/api/healthz", "port": args.dashboard_agent_listen_port}
        if role == "worker":
            head_port = ray_node.build_parser().parse_args(head["command"][2:]).port
            assert args.address == f"$(FQ_RAY_IP):{head_port}", "workers must join the head's Service"


def test_ray_cluster_scales_with_rays_own_autoscaler_and_drains_before_a_pod_goes():
    (cluster,) = by_kind("RayCluster")
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True and spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", "the autoscaler's view: no trials on the head"
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] == 0 < group["maxReplicas"], "from no worker to as many as the search asks for"
        pod = group["template"]["spec"]
        command = pod["containers"][0]["command"]
        cpus = ray_node.build_parser().parse_args(command[2:]).num_cpus
        assert group["rayStartParams"]["num-cpus"] == str(cpus), "the autoscaler must see the CPUs the node offers"
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert float(env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"]) < pod["terminationGracePeriodSeconds"]


def test_ray_job_runs_a_search_on_that_cluster():
    from search.searching.config import build_parser

    (job,) = by_kind("RayJob")
    (cluster,) = by_kind("RayCluster")
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["python", "/app/search/run.py"], argv
    build_parser().parse_args(argv[2:])  # raises UsageError on a flag search/run.py does not know
    assert_flags_exist(argv[2:], build_parser().format_help())


def test_mlflow_runs_its_entrypoint_on_postgresql():
    (deployment,) = [d for d in by_kind("Deployment") if "mlflow" in d["metadata"]["name"]]
    (mlflow,) = deployment["spec"]["template"]["spec"]["containers"]
    assert mlflow["image"] == compose_image("Dockerfile.mlflow")
    command = mlflow["command"]
    assert command[:2] == ["python", "cluster/mlflow_server.py"] and "--basic-auth" in command
    assert int(command[command.index("--workers") + 1]) > 1
    env = {e["name"]: e for e in mlflow["env"]}
    uri = env["MLFLOW_BACKEND_STORE_URI"]["value"]
    (postgres,) = by_kind("StatefulSet")
    (db,) = postgres["spec"]["template"]["spec"]["containers"]
    db_env = {e["name"]: e for e in db["env"]}
    assert db["image"].startswith("postgres:")
    service = next(
        s for s in by_kind("Service") if s["spec"]["selector"] == postgres["spec"]["selector"]["matchLabels"]
    )
    user, database = db_env["POSTGRES_USER"]["value"], db_env["POSTGRES_DB"]["value"]
    port = service["spec"]["ports"][0]["port"]
    expected = f"postgresql://{user}:$(POSTGRES_PASSWORD)@{service['metadata']['name']}:{port}/{database}"
    assert uri == expected
    names = [e["name"] for e in mlflow["env"]]
    assert names.index("POSTGRES_PASSWORD") < names.index("MLFLOW_BACKEND_STORE_URI"), "$(...) needs it first"
    same = (
        env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        == db_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    )
    assert same, "MLflow and PostgreSQL must read one password"


def test_every_service_selects_pods_and_ray_nodes_reach_mlflow():
    labels = pod_labels()
    for service in by_kind("Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= lab.items() for lab in labels), f"{service['metadata']['name']} selects nothing"
    mlflow_service = next(s["metadata"]["name"] for s in by_kind("Service") if "mlflow" in s["metadata"]["name"])
    for container in by_kind("RayCluster")[0]["spec"]["headGroupSpec"]["template"]["spec"]["containers"]:
        uri = {e["name"]: e.get("value") for e in container["env"]}["MLFLOW_TRACKING_URI"]
        assert uri == f"http://{mlflow_service}:5000"


def pod_labels() -> list[dict]:
    found = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind("Deployment") + by_kind("StatefulSet")]
    for cluster in by_kind("RayCluster"):
        found.append(cluster["spec"]["headGroupSpec"]["template"]["metadata"]["labels"])
    return found


def test_secrets_come_from_secrets_and_none_is_committed(tmp_path):
    kustomization = by_kind("Kustomization")[0]
    generated = {g["name"]: g for g in kustomization["secretGenerator"]}
    for name, generator in generated.items():
        assert set(generator) == {"name", "envs"}, f"secret {name} must come from an env file, not literals"
    assert not by_kind("Secret"), "no Secret object (and so no secret value) may be committed"

    # make_secrets.py writes every key the manifests read, into files git ignores.
    written = subprocess.run(
        [sys.executable, str(DEPLOY / "make_secrets.py"), str(tmp_path / "secrets")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert written.returncode == 0, written.stderr
    keys = {}
    for name, generator in generated.items():
        (env_file,) = generator["envs"]
        path = tmp_path / env_file
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        keys[name] = dict(line.split("=", 1) for line in path.read_text().splitlines())
        ignored = subprocess.run(["git", "check-ignore", "-q", str(DEPLOY / env_file)], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"deploy/kuberay/{env_file} is not git-ignored"
    tracked = subprocess.run(["git", "ls-files", str(DEPLOY)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "secrets/" not in tracked.stdout

    (cluster,) = by_kind("RayCluster")
    assert cluster["spec"]["authOptions"]["mode"] == "token"
    assert "auth_token" in keys[cluster["spec"]["authOptions"]["secretName"]]
    refs = 0
    for container in containers():
        for env in container.get("env", []):
            if any(word in env["name"] for word in SECRET_WORDS) and env["name"] != "RAY_AUTH_MODE":
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                assert ref and "value" not in env, f"{container['name']}: {env['name']} must come from a Secret"
                assert ref["key"] in keys[ref["name"]], f"{ref} names a key make_secrets.py does not write"
                refs += 1
            elif "value" in env:
                assert not re.search(r"[0-9a-f]{32}", env["value"]), f"{env['name']} looks like a secret value"
    assert refs >= 6


@pytest.mark.parametrize("forbidden", ["hostPath", "hostNetwork", "privileged"])
def test_no_pod_reaches_into_its_host(forbidden):
    text = "\n".join(p.read_text() for p in DEPLOY.glob("*.yaml"))
    assert forbidden not in text
    for spec in pod_specs():
        assert all(forbidden not in volume for volume in spec.get("volumes", []))

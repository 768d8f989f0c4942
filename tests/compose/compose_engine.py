"""The container engine the compose tests run on: a Docker-compatible engine that answers, or this machine's.

    eval "$(python tests/compose/compose_engine.py up)"      # CI: start (or reuse) the engine, export DOCKER_HOST

On a machine without a Docker engine, `up` runs the container-engine script (Podman behind a Docker API socket,
`docker compose` v2 and docker-compose v1, healthchecks run by the script); set CONTAINER_ENGINE_SCRIPT to point
at it when it is not in ../shared/tools/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class EngineUnavailable(RuntimeError):
    """No container engine answers and none could be started."""


def engine_scripts() -> list[Path]:
    """Where the machine's container-engine script may be."""
    candidates = [os.environ.get("CONTAINER_ENGINE_SCRIPT"), ROOT.parent / "shared" / "tools" / "container-engine"]
    candidates.append("/work/shared/tools/container-engine")
    return [Path(c) for c in candidates if c and Path(c).is_file()]


def engine_answers(env: dict[str, str]) -> bool:
    """True when `docker version` reaches a server with `env`."""
    if not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(["docker", "version"], env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and "Server" in result.stdout


def engine_env(start: bool = True) -> dict[str, str]:
    """The environment whose DOCKER_HOST reaches an engine; starts this machine's engine if none answers."""
    env = dict(os.environ)
    if engine_answers(env):
        if "podman" in subprocess.run(["docker", "version"], env=env, capture_output=True, text=True).stdout.lower():
            env.setdefault("DOCKER_BUILDKIT", "0")  # Podman's API has no BuildKit (it would pull its own image)
        return env
    problems = []
    for script in engine_scripts() if start else []:
        # From the repository's root, whose compose.yaml names postgres:15: the script builds its stand-in.
        result = subprocess.run([str(script), "up"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        found = re.search(r"export DOCKER_HOST=(\S+)", result.stdout)
        if result.returncode == 0 and found:
            env["DOCKER_HOST"] = found[1]
            env["DOCKER_BUILDKIT"] = "0" if "DOCKER_BUILDKIT=0" in result.stdout else env.get("DOCKER_BUILDKIT", "1")
            if engine_answers(env):
                return env
        problems.append(f"{script} up: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    raise EngineUnavailable("no container engine answers `docker version`, " + ("; ".join(problems) or "none found"))


def compose_command(env: dict[str, str]) -> list[str]:
    """`docker compose` (v2, what users type) where installed, else `docker-compose` (v1)."""
    result = subprocess.run(["docker", "compose", "version"], env=env, capture_output=True, text=True, timeout=30)
    if result.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise EngineUnavailable("neither `docker compose` nor `docker-compose` is installed")


def engine_down() -> None:
    """Stop this machine's container-engine API service (a fresh one starts on the next `up`)."""
    for script in engine_scripts()[:1]:
        subprocess.run([str(script), "down"], capture_output=True, text=True, timeout=300)


def main(argv: list[str] | None = None) -> int:
    """`up`: print the `export DOCKER_HOST=...` line for a shell to eval; `down`: stop the engine's API service."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["down"]:
        engine_down()
        return 0
    if argv != ["up"]:
        print("usage: python tests/compose/compose_engine.py up|down", file=sys.stderr)
        return 2
    try:
        env = engine_env()
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in ("DOCKER_HOST", "DOCKER_BUILDKIT"):
        if env.get(name):
            print(f"export {name}={env[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

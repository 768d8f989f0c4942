"""What the three command lines share: one-line flag errors, defaults in `--help`, a folder checked writable."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from search.common.errors import UsageError


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each flag's default, unless its help says it already or it has none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
            return text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose bad flags are a UsageError of one line, without the usage block; a flag is taken only
    as spelled (no prefix of another), and `--help` shows every default."""

    def __init__(self, command: str, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelp)
        super().__init__(prog=f"python search/{command}.py", allow_abbrev=False, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UsageError(f"{message} (see --help)")


def check_writable(path: Path, flag: str) -> None:
    """Refuse, as bad input naming `flag` and the folder, a folder that cannot be made or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        problem = exc.strerror or exc
        raise UsageError(f"{flag} {path} is not writable ({problem}): choose a folder you can write") from None


# What MLflow's tracking client takes: a server, or a database through SQLAlchemy (`postgresql+psycopg2://`, ...).
SERVED_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_tracking_uri_form(uri: str, flag: str = "--tracking-uri", creates: bool = True) -> None:
    """Refuse, before any server is asked, a tracking URI MLflow cannot use: a plain path or `file:` (MLflow's
    file store is in maintenance mode and refuses to start), an unknown scheme, a SQLite database that is a folder,
    cannot be written, or (`creates`: a search makes it) cannot be made where it is named."""
    scheme, sep, rest = uri.partition("://")
    example = "sqlite:///mlflow.db, http://127.0.0.1:5000 or a database such as postgresql://user@host/db"
    if not sep or scheme.split("+", 1)[0].lower() not in (*SERVED_SCHEMES, *DATABASE_SCHEMES, "databricks"):
        raise UsageError(f"{flag} {uri!r} is not a tracking URI MLflow can use: give {example}")
    if not scheme.startswith("sqlite") or not rest.startswith("/") or rest in ("/", "/:memory:"):
        return
    database = Path(rest[1:]).absolute()
    if database.is_dir():
        raise UsageError(f"{flag} {uri}: {database} is a folder: name a database file, e.g. {database}/mlflow.db")
    if database.exists() and not os.access(database, os.W_OK):
        raise UsageError(f"{flag} {uri}: {database} is not writable: choose a database you can write")
    if not database.exists() and creates:
        found = next(p for p in database.parents if p.exists())
        try:  # what MLflow does first: make the database's folder
            tempfile.TemporaryDirectory(dir=found).cleanup()
        except OSError:
            raise UsageError(
                f"{flag} {uri}: {found} is not writable: choose a database in a folder you can write"
            ) from None

"""Tests of the base install: ``pip install .`` alone, no extra, in a venv of its own.

The venv is built once per session of the suite (it takes a while: pip fetches the base
dependencies), from a copy of the source so that the build leaves nothing in the checkout. The
command line in it talks to a sample server this process runs (the server needs websockets,
which the base install does not have).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Dict, List

import pytest

from inspector import DocumentInspector, Inspection, from_json
from inspector.server import SampleServer

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FILES = ("inspector", "setup.cfg", "setup.py", "pyproject.toml", "README.rst")
RUN_TIMEOUT = 120.0

# Building the venv runs pip: minutes on a loaded machine, inside the first test's timeout.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with ``pip install .`` alone; returns its bin directory."""
    work = tmp_path_factory.mktemp("base-install")
    source = work / "source"
    source.mkdir()
    for name in SOURCE_FILES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    environment = work / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / "bin"
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(source)],
        cwd=work, env=clean_env(), capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return bin_dir


def clean_env(**extra: str) -> Dict[str, str]:
    """Our environment without INSPECTOR_* and PYTHONPATH (the checkout must not leak in)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("INSPECTOR_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def run_base(bin_dir: Path, *args: str, url: str = "") -> subprocess.CompletedProcess[str]:
    """Run the base install's ``document-inspector ARGS``, outside the checkout."""
    env = clean_env(INSPECTOR_URL=url) if url else clean_env()
    return subprocess.run(
        [str(bin_dir / "document-inspector"), *args], cwd=bin_dir, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )


def test_base_install_has_no_extra(base_venv: Path) -> None:
    """The venv really is the base install: the package, without websockets, tqdm, sqlglot."""
    code = ("import importlib.util, inspector; print(inspector.__file__); "
            "print([m for m in ('websockets', 'tqdm', 'sqlglot', 'django') "
            "if importlib.util.find_spec(m)])")
    result = subprocess.run([str(base_venv / "python"), "-c", code], cwd=base_venv,
                            env=clean_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    location, extras = result.stdout.splitlines()
    assert not location.startswith(str(ROOT))
    assert extras == "[]"


@pytest.mark.parametrize("command", [[], ["inspect"], ["sources"], ["list"], ["demo"], ["serve"]])
def test_help_works(base_venv: Path, command: List[str]) -> None:
    """``--help`` of the program and of every command works without any extra."""
    result = run_base(base_venv, *command, "--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: document-inspector")


def test_version(base_venv: Path) -> None:
    """``--version`` prints the version."""
    result = run_base(base_venv, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("document-inspector ")


def test_list(base_venv: Path, sample_server: SampleServer) -> None:
    """``list`` prints the listed ids."""
    with DocumentInspector(sample_server.url) as inspector:
        listed = inspector.list_documents()
    result = run_base(base_venv, "list", url=sample_server.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == listed


def test_inspect_json_and_jsonl(base_venv: Path, sample_server: SampleServer) -> None:
    """``inspect`` prints JSON and JSON lines equal to the library's inspections."""
    with DocumentInspector(sample_server.url) as inspector:
        expected = list(inspector.inspect_many(["doc-1", "deck-1"]))
    one = run_base(base_venv, "inspect", "doc-1", url=sample_server.url)
    assert (one.returncode, one.stderr) == (0, "")
    assert from_json(one.stdout, Inspection) == expected[0]
    lines = run_base(base_venv, "inspect", "doc-1", "deck-1", "--format", "jsonl",
                     url=sample_server.url)
    assert (lines.returncode, lines.stderr) == (0, "")
    assert [from_json(line, Inspection) for line in lines.stdout.splitlines()] == expected
    array = run_base(base_venv, "inspect", "doc-1", "deck-1", "--format", "json",
                     url=sample_server.url)
    assert [item["document"]["id"] for item in json.loads(array.stdout)] == ["doc-1", "deck-1"]


@pytest.mark.parametrize(
    ("args", "extra"),
    [(["inspect", "doc-1", "--format", "table"], "document-inspector[cli]"),
     (["sources", "doc-1"], "document-inspector[cli]"),
     (["serve", "--port", "0"], "document-inspector[server]"),
     (["demo"], "document-inspector[server]")],
)
def test_what_needs_an_extra_says_which(
    base_venv: Path, sample_server: SampleServer, args: List[str], extra: str
) -> None:
    """A command that needs an extra exits 2 with one line naming it, before connecting."""
    result = run_base(base_venv, *args, url=sample_server.url)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and extra in result.stderr
    assert sample_server.stats.handshakes == 0

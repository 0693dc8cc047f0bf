"""Tests of the documentation: README.rst's examples run, docs/protocol.md's examples are served.

The README's ``python`` blocks run in order in one namespace, with ``INSPECTOR_URL`` naming a
sample server; each ``pycon`` block is a doctest (``...`` stands for what varies, the port).
"""

from __future__ import annotations

import doctest
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from inspector import Connection
from inspector.server import SampleServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
PROTOCOL = ROOT / "docs" / "protocol.md"


def rst_blocks(text: str, language: str) -> List[Tuple[int, str]]:
    """(line number, code) of every ``.. code-block:: LANGUAGE`` in reStructuredText."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body: List[str] = []
        for following in lines[number + 1:]:
            if following.strip() and not following.startswith("    "):
                break
            body.append(following[4:])
        code = "\n".join(body).strip("\n") + "\n"
        blocks.append((number + 1, code))
    return blocks


def literal_after(text: str, lead: str) -> str:
    """The ``::`` literal block that follows the paragraph ending in ``lead``."""
    start = text.index(lead) + len(lead)
    body = []
    for line in text[start:].splitlines()[2:]:  # the rest of the lead's line, a blank line
        if line.strip() and not line.startswith("    "):
            break
        body.append(line[4:])
    return "\n".join(body).strip("\n") + "\n"


def test_readme_has_examples() -> None:
    """The README has the blocks this module runs (a renamed language would skip them)."""
    text = README.read_text(encoding="utf-8")
    assert len(rst_blocks(text, "python")) >= 3
    assert len(rst_blocks(text, "pycon")) >= 1


def test_readme_is_valid_restructuredtext() -> None:
    """README.rst renders without a warning (it is the package's long description too)."""
    docutils_core = pytest.importorskip("docutils.core")
    warnings = io.StringIO()
    docutils_core.publish_doctree(
        README.read_text(encoding="utf-8"),
        settings_overrides={"warning_stream": warnings, "report_level": 2},
    )
    assert warnings.getvalue() == ""


def test_readme_python_blocks_run(
    sample_server: SampleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``python`` block of the README runs, in order, against a sample server."""
    monkeypatch.setenv("INSPECTOR_URL", sample_server.url)
    monkeypatch.delenv("INSPECTOR_TOKEN", raising=False)
    namespace: Dict[str, Any] = {"__name__": "readme"}
    printed = io.StringIO()
    for line, code in rst_blocks(README.read_text(encoding="utf-8"), "python"):
        compiled = compile("\n" * (line + 1) + code, str(README), "exec")
        with redirect_stdout(printed):
            exec(compiled, namespace)  # noqa: S102  (the README's own examples)
    assert "postgresql://report_user:REDACTED@warehouse.internal:5432/sales" in printed.getvalue()
    assert namespace["everything"][:2] == ["doc-1", "doc-2"]


@pytest.mark.parametrize(
    "block", rst_blocks(README.read_text(encoding="utf-8"), "pycon"),
    ids=lambda block: f"line-{block[0]}",
)
def test_readme_pycon_blocks_hold(block: Tuple[int, str]) -> None:
    """Each ``pycon`` transcript of the README gives the output it shows (doctest, ELLIPSIS)."""
    line, code = block
    parser = doctest.DocTestParser()
    test = parser.get_doctest(code, {}, f"README.rst:{line}", str(README), line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    runner.run(test, out=report.write)
    try:
        assert runner.failures == 0, report.getvalue()
        assert runner.tries >= 5  # the transcript was read, not skipped
    finally:
        server = test.globs.get("server")
        if isinstance(server, SampleServer):
            server.stop()  # a failing transcript must not leave its server running


def test_readme_table_example_is_what_the_command_prints(sample_server: SampleServer) -> None:
    """The README's ``inspect doc-1 --format table`` output is the command's, to the letter."""
    shown = literal_after(README.read_text(encoding="utf-8"),
                          "``inspect doc-1 --format table`` against the sample server::")
    result = subprocess.run(
        [sys.executable, "-m", "inspector", "inspect", "doc-1", "--format", "table",
         "--url", sample_server.url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown


def protocol_examples() -> Dict[str, Any]:
    """The JSON examples of docs/protocol.md's method sections, by method name."""
    text = PROTOCOL.read_text(encoding="utf-8")
    examples: Dict[str, Any] = {}
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        method = section.split()[0]
        blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
        examples[method] = [json.loads(block) for block in blocks]
    return examples


@pytest.mark.parametrize(
    ("method", "object_id"),
    [("GetDocument", "doc-1"), ("GetWidgetContainer", "doc-1/c1"),
     ("GetWidgetProperties", "doc-1/c1/w1")],
)
def test_protocol_examples_are_what_the_sample_server_answers(
    sample_server: SampleServer, method: str, object_id: str
) -> None:
    """docs/protocol.md's reply for each method is exactly the sample server's."""
    with Connection(sample_server.url) as connection:
        assert connection.call(method, {"id": object_id}) == protocol_examples()[method][0]


def test_protocol_error_example_is_what_the_sample_server_answers(
    sample_server: SampleServer,
) -> None:
    """docs/protocol.md's 404 example is the sample server's error for an unknown document."""
    from inspector.exceptions import ServerError

    expected = protocol_examples()["GetDocument"][1]
    with Connection(sample_server.url) as connection, pytest.raises(ServerError) as caught:
        connection.call("GetDocument", {"id": "nope"})
    error = caught.value
    assert {"code": error.code, "message": error.message, "data": error.data} == expected


def test_nothing_cites_a_protocol_document_that_is_not_there() -> None:
    """Code, tests and README cite docs/protocol.md, which exists; never the old, absent name."""
    assert PROTOCOL.exists()
    cited = [path for folder in ("inspector", "tests", "benchmarks")
             for path in (ROOT / folder).rglob("*.py")
             if "PROTOCOL" + ".md" in path.read_text(encoding="utf-8")]
    assert cited == []
    assert "PROTOCOL" + ".md" not in README.read_text(encoding="utf-8")


def test_readme_configuration_defaults_are_the_command_lines() -> None:
    """The README's configuration table gives each option's real default."""
    from inspector.cli import CONNECTION_SETTINGS

    text = README.read_text(encoding="utf-8")
    for option, _, variable, _, default, _ in CONNECTION_SETTINGS:
        row = next(line for line in text.splitlines() if line.startswith(f"``{option} "))
        assert f"``{variable}``" in row
        continuation = text.splitlines()[text.splitlines().index(row) + 1]
        assert f"({default:g})" in row + continuation, row

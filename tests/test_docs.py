"""The docs stay true: every fenced Python and shell block of README.md and docs/ runs here (Sybil).

Python blocks run in this process against the test server, with a real worker (``default``, ``email``,
``reports`` and ``canvas``; the demo modules, tests/tasks_docs.py for the canvas placeholders, and any module file the
document shows) running the jobs. Shell blocks run with bash from the repository root, ``.venv/bin`` first
on PATH. A block that cannot run here is marked just above it with ``<!-- skip: next "reason" -->``; a
Python block whose first line is ``# some/module.py`` is that module's source: it is written to a scratch
project on the workers' path instead of being run. Other fences carry a language (``text``, ``yaml``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import SkipTest

import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from config.settings import DEFAULT_IMPORTS
from tests import tasks_docs
from tests.conftest import BIN, ROOT, Processes, live_workers, wait_for

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODULE_FILE = re.compile(r"# ([A-Za-z_][\w/]*)\.py\n")
FENCE = re.compile(r"^```(\S*)", re.MULTILINE)
SKIP = re.compile(r"<!-- skip: (\S+)(.*?)-->")
LANGUAGES = {"python", "sh", "text", "yaml"}
SHELL_TIMEOUT_S = 60


def _run_python(example: Example) -> None:
    if not MODULE_FILE.match(str(example.parsed)):  # a module's source: written out before the workers started
        PythonEvaluator()(example)


def _run_shell(env: dict[str, str]) -> object:
    def evaluate(example: Example) -> None:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", str(example.parsed)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=SHELL_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # a block that does not end: stop it and everything it started
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(
                f"still running after {SHELL_TIMEOUT_S}s (mark it skipped with the reason?)\n{out}"
            ) from None
        if proc.returncode:
            raise AssertionError(f"exit {proc.returncode}\n{out}")

    return evaluate


def _modules(examples: list[Example], project: Path) -> list[str]:
    """Write the module files a document shows into ``project``; return their dotted names."""
    names = []
    for example in examples:
        found = MODULE_FILE.match(str(example.parsed))
        if found:
            path = project / f"{found.group(1)}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(str(example.parsed))
            names.append(found.group(1).replace("/", "."))
    return names


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A scratch project on this process's path, forgotten afterwards (its modules too)."""
    path = tmp_path / "project"
    path.mkdir()
    sys.path.insert(0, str(path))
    yield path
    sys.path.remove(str(path))
    for name in [n for n, m in sys.modules.items() if str(path) in str(getattr(m, "__file__", None) or "")]:
        del sys.modules[name]


def run_document(doc: Path, env: dict[str, str], procs: Processes, conn: object, project: Path) -> list[str]:
    """Evaluate every example of ``doc`` in order; return the skip reasons met. Fails at the first broken one."""
    shell_env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"}
    sybil = Sybil(parsers=[SkipParser(), CodeBlockParser("python", _run_python), CodeBlockParser("sh", _run_shell(shell_env))])  # fmt: skip
    document = sybil.parse(doc)
    examples = list(document)
    if any(e.region.evaluator is _run_python for e in examples):
        imports = [*DEFAULT_IMPORTS, "tests.tasks_canvas", "tests.tasks_docs", *_modules(examples, project)]
        worker_env = {"TASKRAIL_IMPORTS": ",".join(imports),
                      "PYTHONPATH": os.pathsep.join([str(project), env["PYTHONPATH"]])}  # fmt: skip
        procs.worker("default", "email", "reports", "canvas", env=worker_env)
        wait_for(lambda: live_workers(conn), 30, what="the docs' worker")  # type: ignore[arg-type]
    document.namespace.update({name: getattr(tasks_docs, name) for name in tasks_docs.__all__})
    document.namespace["__name__"] = "__main__"  # as a script run by a reader
    skipped = []
    for example in examples:
        try:
            example.evaluate()
        except SkipTest as skip:
            skipped.append(str(skip))
        except Exception as exc:
            where = f"{doc.name}, line {example.line}"
            raise AssertionError(f"{where}: the example no longer works: {type(exc).__name__}: {exc}") from exc
    return skipped


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_of_the_docs_runs(doc: Path, settings, env, procs: Processes, conn, project: Path) -> None:
    run_document(doc, env, procs, conn, project)


def test_a_broken_example_fails_the_docs_test(settings, env, procs: Processes, conn, project: Path) -> None:
    doc = project / "broken.md"
    good = "```python\nfrom tasks import AsyncResult\n```\n\n```sh\ntaskrail periodic check\n```\n"
    doc.write_text(good + '\n<!-- skip: next "needs a cluster" -->\n```sh\nkubectl apply -k x\n```\n')
    assert run_document(doc, env, procs, conn, project) == ["needs a cluster"]
    for broken, message in [
        ("```python\nsend_newsletter.delay([], 's', 'h')\n```\n", "line 8: the example no longer works: NameError"),
        ("```sh\ntaskrail pause\n```\n", "line 8: the example no longer works: AssertionError: exit 2"),
    ]:
        doc.write_text(good + broken)
        with pytest.raises(AssertionError, match=message):
            run_document(doc, env, procs, conn, project)


def test_every_block_is_labelled_and_every_skip_gives_its_reason() -> None:
    for doc in DOCS:
        text = doc.read_text()
        fences = FENCE.findall(text)[::2]  # opening fences only
        assert set(fences) <= LANGUAGES, f"{doc.name}: label each fence as one of {sorted(LANGUAGES)}: {fences}"
        for action, reason in SKIP.findall(text):
            assert action == "next" and re.fullmatch(r'\s*".{10,}"\s*', reason), f"{doc.name}: skip without a reason"


def test_the_periodic_example_file_is_the_one_the_docs_show() -> None:
    shown = (ROOT / "docs" / "scheduling.md").read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    kept = (ROOT / "docs" / "examples" / "periodic.yaml").read_text()
    assert kept.split("\n", 1)[1] == shown  # after its one comment line

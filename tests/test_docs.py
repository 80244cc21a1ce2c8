"""Docs that cannot drift silently: the README's runnable code blocks run as written; every
registered method, preset and stream is in the docs' tables (with the right task-boundary needs);
one Python version everywhere; `make setup` installs the project itself."""
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from methods import METHODS, PRESETS
from streams import STREAMS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of the fenced blocks whose info string says `runnable` (```python runnable)."""
    return [(m["info"].split()[0], m["body"]) for m in FENCE.finditer(text) if "runnable" in m["info"].split()[1:]]


def environment() -> dict:
    """What an installed project sees: the repository importable from any folder (make setup
    installs it editable), the shared data directory, one thread."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_DATA_DIR": str(ROOT / "data"), "OMP_NUM_THREADS": "1"}


def test_the_readme_has_runnable_blocks_of_both_kinds():
    kinds = [language for language, _ in runnable_blocks(README)]
    assert "python" in kinds and "sh" in kinds


@pytest.mark.parametrize("index", range(len(runnable_blocks(README))))
def test_readme_runnable_block(index, tmp_path):
    """Each block as a user would run it, from another folder than the repository (python: the
    block as a script; sh: each line, `.venv/bin/python` being this interpreter), exit 0."""
    language, code = runnable_blocks(README)[index]
    (tmp_path / "examples").symlink_to(ROOT / "examples")   # the README's relative paths
    if language == "python":
        script = tmp_path / "block.py"
        script.write_text(code)
        run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment(), capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        return
    assert language in ("sh", "bash")
    for line in filter(None, (line.split("#", 1)[0].strip() for line in code.splitlines())):
        words = shlex.split(line)
        if words[0] == ".venv/bin/python":
            words[0] = sys.executable
        elif words[0] in ("ocm-bench", ".venv/bin/ocm-bench"):
            words[:1] = [sys.executable, "-m", "bench.cli"]
        run = subprocess.run(words, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{line}\n{run.stderr[-3000:]}"


def table_rows(text: str, header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def names_in(cell: str) -> set[str]:
    return {name.strip("` ") for name in cell.split(",")}


def test_every_method_and_preset_is_in_the_methods_table():
    rows = table_rows((ROOT / "docs" / "methods.md").read_text(), "| method | the OCM paper's name")
    documented = {row[0].strip("`"): row for row in rows}
    assert set(documented) == set(METHODS) | set(PRESETS)
    for name, spec in METHODS.items():
        assert documented[name][2] == ("yes" if spec.needs_task_boundaries else "no"), name
        assert documented[name][1] == (spec.paper_name or "-"), name
    for name, preset in PRESETS.items():
        assert documented[name][1] == preset.paper_name, name


def test_the_protocols_boundary_table_matches_the_registry():
    rows = table_rows((ROOT / "docs" / "protocol.md").read_text(), "| method | needs task boundaries")
    sides = {row[1]: names_in(row[0]) for row in rows}
    assert sides["yes"] == {n for n, s in METHODS.items() if s.needs_task_boundaries}
    assert sides["no"] == {n for n, s in METHODS.items() if not s.needs_task_boundaries}


def test_every_stream_is_in_the_protocols_stream_table():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    documented = {row[0].strip("`") for row in table_rows(protocol, "| stream | data |")}
    assert documented == {name for name, spec in STREAMS.items() if spec.order != "sorted"}
    assert all(name.removesuffix("-sorted") in documented for name in STREAMS)
    assert "`-sorted` variant" in protocol


def test_one_python_version_everywhere():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + minimum.replace(".", "")
    assert f"Python {minimum} or newer" in README
    makefile = (ROOT / "Makefile").read_text()
    assert f"PYTHON_MIN := {minimum}" in makefile
    assert f"sys.version_info < ({minimum.replace('.', ', ')})" in makefile
    assert sys.version_info >= tuple(map(int, minimum.split(".")))


def test_make_setup_installs_the_project_itself_without_downloads():
    recipe = (ROOT / "Makefile").read_text().split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in recipe
    assert "setuptools==" in (ROOT / "requirements.lock").read_text()   # what builds it, from the lock
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ocm-bench": "bench.cli:main"}


def test_the_metrics_index_is_the_registrys():
    from bench.metrics import index_markdown

    text = (ROOT / "docs" / "metrics.md").read_text()
    start = text.index("<!-- index: bench.metrics.index_markdown() -->\n")
    end = text.index("<!-- end of index -->")
    assert text[start:end].split("\n", 1)[1] == index_markdown()


LISTED = re.compile(r"^[\w.+-][\w.+/-]*(/|\.\w+)$")   # a folder 'core/' or a file 'grid.py', 'examples/my_method.py'


def architecture_layout() -> tuple[set[str], set[str]]:
    """(paths listed, folders listed without their files) in docs/architecture.md's layout block:
    nesting by indentation (2 spaces a level), each line's leading names up to its description."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## The layout", 1)[1].split("```", 2)[1]
    paths, stack = set(), []   # stack: (indent, folder)
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        names = []
        for token in line.split():
            if not LISTED.match(token):
                break
            names.append(token)
        if not names:
            continue   # a description's continuation
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prefix = stack[-1][1] if stack else ""
        for name in names:
            paths.add(prefix + name)
        if len(names) == 1 and names[0].endswith("/"):
            stack.append((indent, prefix + names[0]))
    summarised = {p for p in paths if p.endswith("/") and not any(q != p and q.startswith(p) for q in paths)}
    return paths, summarised


def test_the_architecture_page_lists_the_tree():
    """docs/architecture.md's layout names every module of bench/, methods/ and streams/ (a folder
    listed without its files stands for them), and every path it names exists."""
    paths, summarised = architecture_layout()
    missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
    assert missing == [], f"docs/architecture.md lists what is not there: {missing}"
    unlisted = []
    for package in ("bench", "methods", "streams"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if path.name in ("__init__.py", "__main__.py") or relative in paths:
                continue
            if any(relative.startswith(folder) for folder in summarised):
                continue
            unlisted.append(relative)
    assert unlisted == [], f"docs/architecture.md's layout does not list: {unlisted}"


def test_one_version_number():
    """The package's version is the harness's (pyproject reads bench.HARNESS_VERSION), and the
    changelog's newest release is it."""
    from setuptools.config.pyprojecttoml import read_configuration

    from bench import HARNESS_VERSION

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert read_configuration(ROOT / "pyproject.toml", expand=True)["project"]["version"] == HARNESS_VERSION
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases[0] == HARNESS_VERSION

"""The repository's front door: README commands, Makefile targets and CI agree."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
CI_RUN = REPO / ".ci" / "run"


def makefile_targets() -> set[str]:
    targets: set[str] = set()
    for match in re.finditer(r"^([A-Za-z0-9_.%/$() -]+?)\s*:(?!=)", MAKEFILE, re.MULTILINE):
        targets.update(match.group(1).split())
    return targets


def recipe(target: str) -> list[str]:
    """The commands of one Makefile rule, backslash-continued lines joined."""
    lines = MAKEFILE.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}\s*:(?!=)", line))
    body: list[str] = []
    continued = False
    for line in lines[start + 1 :]:
        if not (line.startswith("\t") or continued):
            break
        text = line.strip()
        if continued:
            body[-1] = body[-1].removesuffix("\\").rstrip() + " " + text
        else:
            body.append(text)
        continued = text.endswith("\\")
    return body


def test_readme_quick_start_names_make_lab_and_make_test():
    assert "make lab" in README
    assert "make test" in README


def test_every_make_target_in_the_readme_exists():
    named = set(re.findall(r"\bmake ([a-z][a-z0-9_-]*)", README))
    assert {"lab", "test"} <= named
    assert named <= makefile_targets(), named - makefile_targets()


def test_makefile_has_the_developer_targets():
    assert {"lab", "test", "demo", "bench", "lint", "clean"} <= makefile_targets()


def test_ci_script_is_executable_strict_bash_that_runs_make_test():
    text = CI_RUN.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    commands = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "make test" in commands
    assert os.access(CI_RUN, os.X_OK)


def test_test_target_never_swallows_a_failing_or_empty_pytest_run():
    # pytest exits 5 when nothing was collected; that must fail `make test`.
    for target in ("lint", "pytest", "nbval"):
        for line in recipe(target):
            assert not line.startswith("-"), line
            assert "|| true" not in line and "|| :" not in line, line
    prerequisites = re.search(r"^test\s*:(.*)$", MAKEFILE, re.MULTILINE)
    assert prerequisites is not None
    assert {"lint", "pytest", "nbval"} <= set(prerequisites.group(1).split())
    assert "--nbval" in " ".join(recipe("nbval"))
    assert "mypy engine kalam_magic" in " ".join(recipe("lint"))


def test_tests_and_benchmarks_read_nothing_outside_the_repository():
    """A fresh clone has no ``../shared`` beside it: every corpus lives under ``tests/``."""
    offenders = []
    for folder in ("tests", "bench", "engine", "kalam_magic"):
        for path in (REPO / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue  # the patterns below
            text = path.read_text(encoding="utf-8")
            if re.search(r"parents\[[2-9]\]|\.\./shared|\"shared\" / \"slt\"", text):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_sqllogictest_corpus_is_in_the_repository():
    from slt_runner import SHARED_SLT_DIR

    assert SHARED_SLT_DIR.resolve().is_relative_to(REPO)
    assert (SHARED_SLT_DIR / "delete_10_good_0.test").stat().st_size > 1_000_000

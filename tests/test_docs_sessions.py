"""The terminal sessions of the docs, run: every command, and what it printed.

A session (``docs/code/sessions/*.console``) is what the docs show: lines ``$ command``,
each followed by what the command prints. Here each session runs in one ``bash``, in a
fresh directory that holds ``hello.py`` and the sessions' own programs
(``docs/code/sessions/*.py``), and, as a checkout does, ``examples/`` and
``docs/code/``, with ``/tmp/`` standing for that directory; the output must match,
where ``...`` stands for any text (a line of its own: any lines). A command ending in
``&`` runs in the background, and the session goes on once its mount point (its first
``/tmp/`` path) is mounted; bash's report of its end is left out. ``ls`` lists in
columns, as in a terminal. Whatever a session leaves mounted is unmounted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from defuse2.mount import is_mounted, unmount

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "docs" / "code" / "sessions"
MARK = "@@ defuse2 docs session @@"


def parse(session: Path) -> list[tuple[str, str]]:
    """``[(command, expected output), ...]`` of a session file."""
    steps: list[tuple[str, list[str]]] = []
    for line in session.read_text().splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


def matches(expected: str, output: str) -> bool:
    """Whether ``output`` is ``expected``, with ``...`` standing for any text."""
    pattern = ""
    for line in expected.splitlines(keepends=True):
        if line.rstrip("\n") == "...":
            pattern += r"(?:.*\n?)*?"
        else:
            pattern += ".*?".join(map(re.escape, line.split("...")))
    return (
        re.fullmatch(pattern, output.rstrip("\n") + ("\n" if expected.endswith("\n") else ""))
        is not None
    )


def script(steps: list[tuple[str, str]], work: Path) -> str:
    """One bash script that runs every step after a marker line."""
    lines = ["shopt -s expand_aliases", "alias ls='ls -C -T 0'", "exec 2>&1"]
    for number, (command, _) in enumerate(steps):
        lines.append(f"echo; echo '{MARK} {number}'")  # a line of its own, always
        real = command.replace("/tmp/", f"{work}/")
        if real.endswith("&"):
            mountpoint = next(word for word in real.split() if word.startswith(f"{work}/"))
            real += (
                f"\nfor _ in $(seq 400); do mountpoint -q {mountpoint} && break; sleep 0.05; done"
            )
        elif real.startswith("kill -9"):
            # Kill and reap it quietly: bash reports "Killed" on its own stderr whenever
            # it notices the end, which may be before a separate wait.
            real = f"{{ {real}; wait $!; }} 2>/dev/null"
        lines.append(real)
    return "\n".join(lines) + "\n"


def ignore_sessions(directory: str, names: list[str]) -> list[str]:
    """What the copy of ``docs/code/`` leaves out: the sessions themselves, caches."""
    return [name for name in names if name in ("sessions", "__pycache__")]


@pytest.mark.mount
@pytest.mark.parametrize("session", sorted(SESSIONS.glob("*.console")), ids=lambda p: p.stem)
def test_session(session: Path, tmp_path: Path) -> None:
    work = tmp_path / "s"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "hello.py", work)
    shutil.copytree(ROOT / "examples", work / "examples")  # as in a checkout
    shutil.copytree(ROOT / "docs" / "code", work / "docs" / "code", ignore=ignore_sessions)
    for program in SESSIONS.glob("*.py"):
        shutil.copy(program, work)
    steps = parse(session)
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(ROOT))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    try:
        done = subprocess.run(
            ["bash", "-c", script(steps, work)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout.replace(f"{work}/", "/tmp/")
        printed = re.split(rf"^{re.escape(MARK)} \d+\n", output, flags=re.M)[1:]
        printed = [re.sub(r"^bash: line \d+:", "bash:", text, flags=re.M) for text in printed]
        printed = [re.sub(r"^bash: \d+ Killed .*\n", "", text, flags=re.M) for text in printed]
        assert len(printed) == len(steps), output
        for (command, expected), got in zip(steps, printed, strict=True):
            assert matches(expected, got), f"$ {command}\nexpected:\n{expected}\ngot:\n{got}"
    finally:
        deadline = time.monotonic() + 10
        for path in sorted(work.rglob("*"), reverse=True):
            if path.is_dir() and is_mounted(path) and time.monotonic() < deadline:
                unmount(path)

"""Types that fit the docs: user code written from them passes ``mypy --strict``.

The how-to code (``docs/code/``) overrides what the docs say to override --
``ContentFile.content``, ``Directory.entries``, ``WritableFile.content``/``save``,
``StoreResource`` methods, ``Resource`` operations -- with annotations, as a user
under ``mypy --strict`` writes them. The stubs of ``defuse2.declared`` also catch a
return value an operation may not give.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOWTO_CODE = ["content.py", "groups.py", "network.py", "routes.py", "validate.py", "writable.py"]

WRONG = """
from defuse2 import ContentFile, FileSystem, Resource

fs = FileSystem()


@fs.route("/<name>")
class Files(Resource):
    def read(self, size: int, offset: int, name: str) -> int:  # read gives bytes or str
        return 0


@fs.route("/c/<name>")
class Text(ContentFile):
    def content(self, name: str) -> list[str]:  # content gives bytes or str
        return [name]
"""


def mypy(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode:
        pytest.fail("mypy is needed (pip install -e '.[dev]')")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_the_docs_code_type_checks_and_wrong_returns_do_not(tmp_path: Path) -> None:
    user = tmp_path / "user.py"
    user.write_text(WRONG)
    howto = [str(ROOT / "docs" / "code" / name) for name in HOWTO_CODE]
    result = mypy(*howto, str(user), cwd=ROOT)  # one run: mypy takes seconds to start
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith(str(user)) for line in errors), result.stdout  # docs: none
    assert len(errors) == 2, result.stdout
    assert all("incompatible with supertype" in line for line in errors), result.stdout

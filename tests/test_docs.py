"""The documentation: it builds without a warning, and what it shows is true.

Every code sample in ``docs/`` is included from ``examples/``, ``docs/code/`` or the
tests, so this file runs the ``docs/code/`` modules, checks the README's snippet and
commands against the example they describe, and re-captures the ``--trace`` output of
the tutorial to check it still names the same operations.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from defuse2 import testing
from errnos import errno_of

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CODE = DOCS / "code"
EXAMPLES = ROOT / "examples"
TIMEOUT = 20  # seconds for anything that waits on a mount or a command
BUILD_TIMEOUT = 300


def load(path):
    """Import the file ``path`` as a new module."""
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def script_mount(argv, mountpoint):
    """Run ``argv`` (a command that mounts on ``mountpoint`` in the foreground) until the
    block ends; then unmount, wait for it to exit and check that it exited cleanly."""
    log = mountpoint.parent / f"{mountpoint.name}.log"
    with testing.script_mount(argv, mountpoint, log, timeout=TIMEOUT) as run:
        yield mountpoint
    assert run.returncode == 0, log.read_text()


def empty_dir(tmp_path, name="m"):
    path = tmp_path / name
    path.mkdir()
    return path


# -- the Sphinx build ------------------------------------------------------------------------


def test_docs_build_without_warnings(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        if os.environ.get("CI"):
            pytest.fail("sphinx is required in CI (pip install -e '.[docs]')")
        pytest.skip("sphinx is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html"]
        + [str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "html" / "tutorial.html").is_file()
    api = (tmp_path / "html" / "api.html").read_text()
    text = re.sub(r"<[^>]+>", "", api)  # the signatures as they read
    assert "mode=0o444" in text and "mode=292" not in text
    assert 'id="defuse2.FileSystem.dispatcher"' not in api  # internal: not in the reference
    assert 'href="https://docs.python.org/3.11/library/pathlib.html#pathlib.Path"' in api


def test_python_inventory_holds_the_listed_names():
    """``docs/inventories/python.inv`` (what intersphinx reads offline) has exactly the
    names of ``python-names.txt``, at the addresses Python's own inventory gives."""
    inventories = load(DOCS / "inventories" / "python.py")
    kept = inventories.read(inventories.OUTPUT)
    assert sorted(kept) == sorted(inventories.wanted())
    if not inventories.FULL.is_file():
        pytest.skip(f"{inventories.FULL} is not installed (Debian: python3.11-doc)")
    full = inventories.read(inventories.FULL)
    assert {pair: full[pair] for pair in kept} == kept


def test_every_example_is_documented():
    page = (DOCS / "examples.rst").read_text()
    for example in sorted(EXAMPLES.glob("*.py")):
        assert f".. literalinclude:: ../examples/{example.name}" in page


def test_every_howto_is_in_the_toctree():
    index = (DOCS / "howto" / "index.rst").read_text()
    for page in sorted((DOCS / "howto").glob("*.rst")):
        if page.stem != "index":
            assert f"\n   {page.stem}\n" in index


def test_the_api_page_imports_every_public_name():
    """The import block at the top of the API reference runs, and lists exactly what
    ``defuse2/__init__.py`` exports (``from .x import Name as Name``)."""
    api = (DOCS / "api.rst").read_text()
    block = api.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    namespace: dict[str, object] = {}
    exec(re.sub(r"^    ", "", block, flags=re.M), namespace)
    listed = {name for name in namespace if not name.startswith("__")}
    init = (ROOT / "defuse2" / "__init__.py").read_text()
    assert listed == set(re.findall(r"^from \S+ import \w+ as (\w+)$", init, flags=re.M))


# -- README ----------------------------------------------------------------------------------


def test_readme_snippet_is_the_hello_example():
    readme = (ROOT / "README.rst").read_text()
    block = readme.split(".. code-block:: python\n\n", 1)[1].split("\n\n\n", 1)[0]
    snippet = re.sub(r"^    ", "", block.rstrip(), flags=re.M).rstrip()
    hello = (EXAMPLES / "hello.py").read_text()
    code = hello[hello.index("from defuse2") :].strip()
    # The README block ends at the first blank pair; compare up to that point.
    assert code.startswith(snippet)
    assert "fs.main()" in readme


def test_readme_commands():
    readme = (ROOT / "README.rst").read_text()
    # The README installs what CI installs before it runs the same test command.
    run = (ROOT / ".ci" / "run").read_text()
    ci = re.search(r'pip install -q -e "(\.\[[\w,]+\])"', run)
    packages = re.search(r"apt-get install -y -qq ([\w .-]+?) >/dev/null", run)
    assert ci is not None and packages is not None
    assert "fuse3 libfuse2" in packages.group(1)
    for command in [
        f"apt-get install -y {packages.group(1)}\n",
        f'pip install -e "{ci.group(1)}"',
        "python examples/hello.py /tmp/m\n",
        "python -m pytest",
    ]:
        assert command in readme
    assert "test2test2test2test2" in readme


def test_defuse2_examples_lists_every_example():
    result = subprocess.run(
        [sys.executable, "-m", "defuse2", "examples"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    for example in EXAMPLES.glob("*.py"):
        if example.stem.startswith("_"):  # a helper, such as a demo service: not listed
            assert example.stem not in result.stdout
            continue
        summary = load(example).__doc__.strip().splitlines()[0]
        assert re.search(rf"^{example.stem}\s+{re.escape(summary)}$", result.stdout, re.M)


# -- the how-to code -------------------------------------------------------------------------


def test_routes_howto():
    routes = load(CODE / "routes.py")
    client = routes.fs.test_client()
    assert sorted(client.listdir("/")) == ["colors", "hex", "users"]
    assert client.listdir("/users") == ["me", "1", "2"]
    assert client.read_text("/users/1/profile.json") == '{"id": 1, "name": "ada"}\n'
    me = client.read_text("/users/me/profile.json")
    assert me == f'{{"uid": {os.getuid()}, "pid": {os.getpid()}}}\n'
    assert client.read_text("/colors/red.txt") == "red\n"
    assert client.read_text("/hex/ff") == "255\n"
    for missing in ["/users/3/profile.json", "/users/x/profile.json", "/colors/pink.txt"]:
        assert errno_of(client.stat, missing) == errno.ENOENT
    assert routes.fs.path_for(routes.Profile, user_id=7) == "/users/7/profile.json"
    assert routes.fs.path_for(routes.Number, number=255) == "/hex/ff"
    assert routes.fs.match("/users/me/profile.json").resource == "MyProfile"
    assert routes.fs.match("/users/2/profile.json").variables == {"user_id": 2}
    assert routes.fs.match("/notes.txt") is None


def test_routes_howto_cli():
    target = str(CODE / "routes.py")
    matched = subprocess.run(
        [sys.executable, "-m", "defuse2", "match", target, "/users/me/profile.json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert matched.stdout.split() == ["/users/me/profile.json", "MyProfile"]
    store = subprocess.run(
        [sys.executable, "-m", "defuse2", "match", target, "/notes.txt"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert store.stdout.strip() == "store"


def test_groups_howto():
    groups = load(CODE / "groups.py")
    client = groups.fs.test_client()
    assert sorted(client.listdir("/")) == ["archive", "status", "weather"]
    assert client.read_text("/weather/paris.txt") == "Paris: sunny\n"
    assert client.read_text("/archive/2026/weather/oslo.txt") == "Oslo: sunny\n"
    assert client.read_text("/archive/2026/weather/README") == "One file per city.\n"
    assert client.read_text("/status/version") == "0.1.0\n"


def test_content_howto():
    content = load(CODE / "content.py")
    client = content.fs.test_client()
    assert sorted(client.listdir("/")) == ["clock", "motd", "planets"]
    assert client.read_text("/motd") == "Welcome!\n"
    assert re.fullmatch(r"\d\d:\d\d:\d\d\n", client.read_text("/clock"))
    assert client.listdir("/planets") == ["mercury.txt", "venus.txt", "earth.txt"]
    assert client.read_text("/planets/earth.txt") == "earth orbits at 1.0 AU\n"
    assert client.stat("/planets/earth.txt").st_mode & 0o777 == 0o440
    assert errno_of(client.stat, "/planets/pluto.txt") == errno.ENOENT
    assert errno_of(client.write_text, "/motd", "x") == errno.EROFS


def test_network_howto_blocking_route():
    """The blocking route of the network how-to reads what a real HTTP server sends."""
    network = load(CODE / "network.py")

    class Weather(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{self.path.rpartition('/')[2]}: sunny\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Weather) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            network.API = f"http://127.0.0.1:{server.server_address[1]}"
            with network.fs.test_client() as client:
                assert client.read_text("/weather/paris.txt") == "paris: sunny\n"
        finally:
            server.shutdown()


def test_validate_howto():
    validate = load(CODE / "validate.py")
    client = validate.fs.test_client()
    client.write_text("/notes/a.txt", "hello\n")
    assert client.read_text("/notes/a.txt") == "hello\n"
    assert errno_of(client.write_bytes, "/notes/b.txt", b"bin\0ary") == errno.EINVAL
    assert errno_of(client.write_bytes, "/notes/c.txt", b"x" * 5000) == errno.EFBIG
    assert errno_of(client.truncate, "/notes/a.txt", 5000) == errno.EFBIG
    client.write_text("/notes/free-form.md", "\0 anything")  # not a .txt: no rule applies
    client.unlink("/notes/a.txt")
    assert sorted(client.listdir("/notes")) == ["b.txt", "c.txt", "free-form.md"]


def test_snapshots_howto(tmp_path):
    snapshots = load(CODE / "snapshots.py")
    assert snapshots.save_and_restore(tmp_path / "notes.tar") == "write the docs\n"


def run_pytest(test_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` on a test file of the docs, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def test_testing_howto():
    """``docs/code/test_fixtures.py`` is a test module of its own: run it with pytest."""
    result = run_pytest(CODE / "test_fixtures.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b(5 passed|3 passed, 2 skipped)", result.stdout), result.stdout


def test_tutorial_tests_run_beside_hello():
    """Tutorial step 8: ``docs/code/test_hello.py`` beside ``hello.py``, as a user runs it."""
    result = run_pytest(
        CODE / "test_hello.py", PYTHONPATH=os.pathsep.join([str(EXAMPLES), str(ROOT)])
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed", result.stdout), result.stdout


# -- what the tutorial and the how-tos show mounted ------------------------------------------


@pytest.mark.mount
def test_trace_output_in_the_tutorial_is_current():
    capture = load(DOCS / "trace" / "capture.py")
    live = capture.capture()
    for name, trace in live.items():
        stored = (DOCS / "trace" / name).read_text()
        assert set(capture.operations(stored)) == set(capture.operations(trace)), name
    assert capture.operations(live["cat.txt"])[-3:] == ["open", "read", "release"]
    assert "opendir" in capture.operations(live["ls-l.txt"])


@pytest.mark.mount
def test_snapshots_howto_command_line(tmp_path):
    tar = tmp_path / "notes.tar"
    mountpoint = empty_dir(tmp_path)
    memory = [sys.executable, str(EXAMPLES / "memory.py"), str(mountpoint), "--foreground"]
    with script_mount([*memory, "--save", str(tar)], mountpoint):
        (mountpoint / "notes").mkdir()
        (mountpoint / "notes" / "todo.txt").write_text("write the docs\n")
        os.symlink("notes/todo.txt", mountpoint / "latest")
    assert tar.is_file()
    with script_mount([*memory, "--load", str(tar)], mountpoint):
        assert (mountpoint / "latest").read_text() == "write the docs\n"
        assert os.readlink(mountpoint / "latest") == "notes/todo.txt"


@pytest.mark.mount
@pytest.mark.parametrize(
    "flags",
    [[], ["--libfuse", "2"], ["--binding", "fusepy"]],
    ids=["mfusepy3", "mfusepy2", "fusepy"],
)
def test_bindings_howto(tmp_path, flags):
    mountpoint = empty_dir(tmp_path)
    hello = [sys.executable, str(EXAMPLES / "hello.py"), str(mountpoint), "--foreground"]
    with script_mount([*hello, *flags], mountpoint):
        assert (mountpoint / "test2.txt").read_text() == "test2test2test2test2"
        assert sorted(os.listdir(mountpoint)) == [f"test{i}.txt" for i in range(4)]


@pytest.mark.mount
def test_logging_howto_logs_tracebacks_to_its_file(tmp_path):
    mountpoint = empty_dir(tmp_path)
    log = tmp_path / "fs.log"
    command = [sys.executable, str(CODE / "logging_setup.py"), str(mountpoint), str(log)]
    with script_mount(command, mountpoint):
        assert errno_of((mountpoint / "report").read_text) == errno.EIO
    text = log.read_text()
    assert "ERROR defuse2: getattr /report" in text
    assert "return str(1 / 0)" in text and "ZeroDivisionError: division by zero" in text


@pytest.mark.mount
def test_systemd_unit_commands_mount_and_stop_on_sigterm(tmp_path):
    """The deployment page's unit: ExecStartPre, then ExecStart until systemd's SIGTERM."""
    unit = (CODE / "defuse2-notes.service").read_text()
    commands = dict(re.findall(r"^(ExecStart(?:Pre)?)=-?(.+)$", unit, flags=re.M))
    mountpoint = empty_dir(tmp_path)
    app = tmp_path / "app.py"
    app.write_text((EXAMPLES / "memory.py").read_text())
    here = {
        "/opt/notes/venv/bin/defuse2": f"{sys.executable} -m defuse2",
        "/opt/notes/app.py": str(app),
        "/srv/notes": str(mountpoint),
    }

    def argv(line):
        for unit_path, real in here.items():
            line = line.replace(unit_path, real)
        return line.split()

    before = subprocess.run(argv(commands["ExecStartPre"]), capture_output=True, timeout=TIMEOUT)
    assert before.returncode == 1  # nothing to clear: a failure the unit ignores ("-")
    log = tmp_path / "service.log"
    with testing.script_mount(argv(commands["ExecStart"]), mountpoint, log, timeout=TIMEOUT) as run:
        (mountpoint / "note.txt").write_text("kept")
        run.send_signal(signal.SIGTERM)  # systemctl stop
        assert run.wait(TIMEOUT) == 0, log.read_text()
        assert not os.path.ismount(mountpoint)


@pytest.mark.mount
def test_mounted_howto(tmp_path):
    mounted = load(CODE / "mounted.py")
    assert mounted.read_motd(empty_dir(tmp_path)) == "Welcome!\n"
    assert not os.path.ismount(tmp_path / "m")

"""Sphinx configuration for the defuse2 documentation.

Build it with ``sphinx-build -W -n -b html docs docs/_build/html``: warnings are errors,
and so is every reference that resolves to nothing (``-n``). The build needs no network:
links into Python's documentation come from ``inventories/python.inv``, a small part of
Python's own inventory kept here (see ``inventories/python.py``), and every code sample
is included from a file that the test suite runs.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # document the checkout, even when it is not installed

import defuse2  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "code"))
import cli_help  # noqa: E402

cli_help.write()  # docs/_generated/cli/*.txt: the --help of each command, for cli.rst

project = "defuse2"
author = "The defuse2 contributors"
copyright = "2026, The defuse2 contributors"
release = defuse2.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]

# Python's documentation, linked offline: the inventory lists where each Python name
# lives under the URL; intersphinx reads it from the file instead of downloading it.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", os.path.join(HERE, "inventories", "python.inv"))
}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True  # defaults as written: mode=0o444, not mode=292
autoclass_content = "class"
default_role = "code"
manpages_url = "https://man7.org/linux/man-pages/man{section}/{page}.{section}.html"
nitpicky = True
nitpick_ignore = [
    # Python documents it under os.statvfs(), with no entry of its own to link to.
    ("py:class", "os.statvfs_result"),
    # mount.mounted()'s return type, unresolved behind @contextmanager: pathlib.Path.
    ("py:class", "Path"),
    # Where asyncio defines what it documents as asyncio.AbstractEventLoop.
    ("py:class", "asyncio.events.AbstractEventLoop"),
]
nitpick_ignore_regex = [
    # Type variables of the decorators: each returns what it is given, unchanged.
    ("py:class", r"defuse2\.scaffold\.[RF]|defuse2\.(filesystem|lifecycle)\.H"),
    # Internal modules and classes named in docstrings; they are not in the reference.
    ("py:(mod|class)", r"defuse2\.(adapter|binding|caching|cstat|store\.beneath)(\..*)?"),
    ("py:(mod|class)", r"defuse2\.(readers|replytimeouts|serving|session|threadstate)(\..*)?"),
    ("py:class", r"(defuse2\.invalidation\.)?Invalidator"),
    ("py:class", r"(defuse2\.dispatch\.)?Dispatcher|defuse2\.scaffold\.Scaffold"),
]

exclude_patterns = ["_build", "_generated", "code", "trace", "inventories"]
templates_path = []
html_static_path = ["_static"]
html_css_files = ["defuse2.css"]

html_theme = "furo"
html_title = f"defuse2 {release}"

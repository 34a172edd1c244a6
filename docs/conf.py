"""Sphinx configuration for the defuse2 documentation.

Build it with ``sphinx-build -W -b html docs docs/_build/html``: warnings are errors.
The build needs no network: intersphinx is off and every code sample is included
from a file that the test suite runs.
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)  # document the checkout, even when it is not installed

project = "defuse2"
author = "The defuse2 contributors"
copyright = "2026, The defuse2 contributors"
release = "0.1.0"
version = "0.1"

extensions = ["sphinx.ext.autodoc"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autoclass_content = "class"
default_role = "code"
manpages_url = "https://man7.org/linux/man-pages/man{section}/{page}.{section}.html"

exclude_patterns = ["_build", "code", "trace"]
templates_path = []
html_static_path = []

html_theme = "alabaster"
html_title = "defuse2"
html_theme_options = {
    "description": "A Flask-style framework for writing FUSE filesystems in Python",
    "fixed_sidebar": True,
}

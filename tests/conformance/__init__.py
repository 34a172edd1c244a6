"""The conformance suite: one set of POSIX checks, run against every kind of target.

Each test takes the ``t`` fixture (:class:`conformance.targets.Target`), an ``os``-like
interface whose paths are relative to a fresh directory. The same test runs on tmpfs
(proof that it states what Linux does), through the test client, and through real mounts
on every supported binding. Select one with ``-k``: ``pytest tests/conformance -k client``.
"""

"""What declaring routes costs, as the number of routes grows.

Where it sits: user code -> ``fs.route()`` / ``fs.add_route()`` -> the route map. No
mount and no kernel: the time measured is registering ``N`` routes on a new
:class:`~defuse2.FileSystem` and then serving its first path through the test client,
which builds the werkzeug map, the implied directories and the invokers (the work a
mount does before its first callback).

Two shapes of routes, each with one resource class per route:

``flat``    ``/file{i}.<ext>``: one segment, no implied directory;
``nested``  ``/group{i}/<user>/items/<int:item>.json``: three implied directories each.

For each shape and size it prints the median time of ``--rounds`` rounds (the sizes
alternate within a round, so load elsewhere on the machine hits them alike) and the
ratio ``time(10 * N) / time(N)`` for each pair of sizes: about 10 means linear.

Run::

    python benchmarks/registration.py [--sizes 10,100,1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

from defuse2 import FileSystem, Resource

SHAPES: dict[str, Callable[[int], str]] = {
    "flat": lambda index: f"/file{index}.<ext>",
    "nested": lambda index: f"/group{index}/<user>/items/<int:item>.json",
}
#: A path each shape serves, asked once to build the map.
FIRST_PATH = {"flat": "/file0.txt", "nested": "/group0/ann/items/1.json"}


def resource_classes(count: int) -> list[type[Resource]]:
    """``count`` distinct resource classes, made before the clock starts."""

    def read(self: Resource, size: int, offset: int) -> bytes:
        return b""

    return [type(f"Resource{index}", (Resource,), {"read": read}) for index in range(count)]


def register_and_serve(shape: str, count: int) -> float:
    """Seconds to register ``count`` routes of ``shape`` and serve the first path."""
    classes = resource_classes(count)
    rule = SHAPES[shape]
    gc.collect()
    start = time.perf_counter()
    fs = FileSystem()
    for index, cls in enumerate(classes):
        fs.add_route(rule(index), cls)
    fs.test_client().stat(FIRST_PATH[shape])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="route counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    samples: dict[tuple[str, int], list[float]] = {}
    for shape in SHAPES:
        register_and_serve(shape, sizes[0])  # warm up imports and caches
    for _ in range(args.rounds):
        for shape in SHAPES:
            for size in sizes:
                samples.setdefault((shape, size), []).append(register_and_serve(shape, size))
    print(f"{'shape':<8} {'routes':>7} {'median ms':>10} {'ms/route':>9}")
    for (shape, size), times in samples.items():
        median = statistics.median(times)
        print(f"{shape:<8} {size:>7} {median * 1000:>10.1f} {median * 1000 / size:>9.3f}")
    print()
    for shape in SHAPES:
        for small, large in zip(sizes, sizes[1:], strict=False):
            ratios = [
                big / little
                for big, little in zip(samples[shape, large], samples[shape, small], strict=True)
            ]
            print(
                f"{shape:<8} time({large}) / time({small}) = {statistics.median(ratios):.1f} "
                f"(rounds: {min(ratios):.1f}-{max(ratios):.1f}; "
                f"linear: {large / small:.0f})"
            )


if __name__ == "__main__":
    sys.exit(main())

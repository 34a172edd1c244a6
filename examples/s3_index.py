"""An S3 bucket as a filesystem, with a routed index of everything in it.

Teaches routes over an object store. Mounted with ``--store s3://BUCKET/PREFIX``, every
unrouted path is an object (an ``FsspecStore`` over s3fs: install ``defuse2[s3]``);
``/INDEX.txt`` is generated at each ``open``: one line per object, its size and path.
The same routes run over a directory (``--store DIR``) or memory (no ``--store``)::

    $ python examples/s3_index.py /tmp/m --foreground -o threads \\
          --store s3://my-bucket/photos &
    $ cp -a ~/Pictures/2026 /tmp/m/
    $ cat /tmp/m/INDEX.txt
         12345  2026/beach.jpg
         67890  2026/city.jpg

Credentials and the endpoint come from the usual places (``AWS_*`` variables,
``~/.aws``), or from fsspec's configuration:
``FSSPEC_S3='{"endpoint_url": "http://127.0.0.1:9000"}'`` for a local S3-API server.
Each request waits on the network; a slow one holds up only itself, and ``-o threads``
serves many at once.
"""

import stat

from defuse2 import ContentFile, FileSystem

fs = FileSystem()  # memory unless mounted with --store


@fs.route("/INDEX.txt")
class Index(ContentFile):
    """Every stored file under ``/``, with its size."""

    dynamic = True  # the bucket changes: never cached

    def content(self):
        lines = [f"{size:>10}  {path}" for path, size in sorted(self.walk("/"))]
        return "\n".join(lines) + "\n" if lines else "(empty)\n"

    def walk(self, directory):
        for name in self.store.readdir(directory):
            path = f"{directory.rstrip('/')}/{name}"
            st = self.store.getattr(path)
            if stat.S_ISDIR(st["st_mode"]):
                yield from self.walk(path)
            else:
                yield path.lstrip("/"), st["st_size"]


if __name__ == "__main__":
    fs.main()

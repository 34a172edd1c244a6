"""A translator over real files: beside every Markdown file, its rendered HTML.

Teaches routes over a store that is a host directory. Mounted with ``--store DIR``,
every unrouted path is a file of ``DIR`` (a ``DirectoryStore``): notes written in the
mount are on disk, notes written on disk show in the mount. For each ``*.md``, in any
directory, a ``*.html`` appears beside it, rendered at each ``open`` from the current
Markdown; writing, renaming and deleting the ``.md`` work as on any disk::

    $ python examples/markdown.py /tmp/m --foreground --store ~/notes &
    $ printf '# Plans\\n\\nWrite *more* notes.\\n' > /tmp/m/plans.md
    $ ls /tmp/m
    plans.html  plans.md
    $ cat /tmp/m/plans.html
    <h1>Plans</h1>
    <p>Write <em>more</em> notes.</p>
    $ ls ~/notes
    plans.md

The renderer is a small one of its own (headings, paragraphs, lists, code, emphasis,
links); a real one (``markdown``, ``mistune``) would drop in where ``render`` is.
"""

import html
import re

from defuse2 import ContentFile, FileSystem, StoreResource

fs = FileSystem()  # memory unless mounted with --store DIR


@fs.route("/")
@fs.route("/<path:where>")
class Stored(StoreResource):
    """Every stored file and directory, as it is; directories also list the views."""

    def readdir(self, path, fh):
        names = self.store.readdir(path, fh)
        return names + [name[:-3] + ".html" for name in names if name.endswith(".md")]


@fs.route("/<path:stem>.html")
class Rendered(ContentFile):
    """``stem.md`` rendered; it exists exactly when the Markdown file does."""

    dynamic = True  # follows a file that changes elsewhere: never cached

    def content(self, stem):
        store, path = self.store, f"/{stem}.md"
        size = store.getattr(path)["st_size"]  # FileNotFoundError: no such view
        fh = store.open(path, 0)
        try:
            return render(store.read(path, size, 0, fh).decode("utf-8", "replace"))
        finally:
            store.release(path, fh)


INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\*([^*]+)\*"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]


def inline(text):
    text = html.escape(text, quote=False)
    for pattern, replacement in INLINE:
        text = pattern.sub(replacement, text)
    return text


def render(markdown):
    """HTML for the common part of Markdown, line by line."""
    out, paragraph, items, code = [], [], [], None

    def close_blocks():
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
        paragraph.clear()
        items.clear()

    for line in markdown.splitlines():
        heading = re.match(r"(#{1,6}) (.*)", line)
        if code is not None:  # inside a fenced code block
            if line.startswith("```"):
                out.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
                code = None
            else:
                code.append(line)
        elif line.startswith("```"):
            close_blocks()
            code = []
        elif heading:
            close_blocks()
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif re.match(r"[-*] ", line):
            if paragraph:
                close_blocks()
            items.append(line[2:])
        elif line.strip():
            if items:
                close_blocks()
            paragraph.append(line.strip())
        else:
            close_blocks()
    close_blocks()
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    fs.main()

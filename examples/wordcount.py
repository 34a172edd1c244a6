"""A text-analysis view: /stats/NAME.words counts the words of each stored file.

Teaches computed files that follow the data: write text files at the top of the
mount (they live in the MemoryStore) and ``/stats`` grows a ``.words`` file for each,
recomputed whenever it is opened. ``Directory`` lists them, ``ContentFile`` renders
them; both read the store through its own API::

    $ echo "the cat saw the dog" > /tmp/m/story.txt
    $ cat /tmp/m/stats/story.txt.words
    5 words, 4 distinct
          2 the
          1 cat
          1 dog
          1 saw

Run it::

    python examples/wordcount.py /tmp/m --foreground
"""

import re
import stat
from collections import Counter

from defuse2 import ContentFile, Directory, FileSystem
from defuse2.store import read_stored

fs = FileSystem(quota="64 MiB")


def count_words(text):
    """A report of ``text``: totals, then each word with its count, most frequent first."""
    counts = Counter(re.findall(r"\w+", text.lower()))
    lines = [f"{sum(counts.values())} words, {len(counts)} distinct"]
    lines += [f"{n:7d} {word}" for word, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]
    return "\n".join(lines) + "\n"


@fs.route("/stats")
class Stats(Directory):
    def entries(self):
        for name in self.store.readdir("/"):
            if stat.S_ISREG(self.store.getattr(f"/{name}")["st_mode"]):
                yield f"{name}.words"


@fs.route("/stats/<name>.words")
class WordCount(ContentFile):
    dynamic = True  # follows data that changes elsewhere: never cache it

    def content(self, name):
        return count_words(read_stored(self.store, f"/{name}").decode("utf-8", "replace"))


if __name__ == "__main__":
    fs.main()

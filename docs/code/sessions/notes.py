"""A filesystem with a bug: the file the "Logging and debugging" page debugs."""

from defuse2 import FileSystem

fs = FileSystem()


@fs.file("/motd")
def motd():
    return "hello\n"


@fs.file("/report")
def report():
    total = 0
    return f"average: {100 / total}\n"  # the bug: total is 0


if __name__ == "__main__":
    fs.main()

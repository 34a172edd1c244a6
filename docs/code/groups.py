"""Groups of routes under a prefix: the code of the "Groups and prefixes" how-to."""

from defuse2 import ContentFile, FileSystem, Group

# A group declares routes relative to where it will be registered, like a Flask
# blueprint; it can live in its own module and be registered on several filesystems.
weather = Group()


@weather.route("/<city>.txt")
class Forecast(ContentFile):
    def content(self, city: str) -> str:
        return f"{city.title()}: sunny\n"


@weather.file("/README")
def readme() -> str:
    return "One file per city.\n"


fs = FileSystem()
fs.register(weather, prefix="/weather")
fs.register(weather, prefix="/archive/2026/weather")

# fs.group() makes a group and registers it in one step.
status = fs.group("/status")


@status.file("/version")
def version() -> str:
    return "0.1.0\n"

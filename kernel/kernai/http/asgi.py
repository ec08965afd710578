"""The ASGI entry point granian serves: settings come from ``KERNAI_*`` environment variables."""

from kernai.http.app import create_app
from kernai.settings import Settings

app = create_app(Settings.load())

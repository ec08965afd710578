"""The API surfaces, each a default plugin (:data:`kernai.plugins.DEFAULT_PLUGINS`) that registers its
routes through :func:`kernai.hookspecs.register_routes`, as a third-party surface would.

A surface package holds its controllers, its wire structs (``schemas``) and its translation to and
from the capability structs side by side. Surfaces import the core, never each other; the core imports
no surface.
"""

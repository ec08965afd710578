"""The gallery: install models and backend plugins from indexes, with jobs, progress and verified downloads.

- :mod:`kernai.gallery.schema`: the format of ``index.yaml`` (models) and ``backends.yaml`` (plugins).
- :mod:`kernai.gallery.catalog`: reading the configured galleries and resolving ``gallery@name``.
- :mod:`kernai.gallery.sources`: fetching ``http(s)://``, ``file://``, ``huggingface://`` and ``pypi:``.
- :mod:`kernai.gallery.models` / :mod:`kernai.gallery.backends`: installing and removing them.
- :mod:`kernai.gallery.jobs`: job records in SQLite; :mod:`kernai.gallery.service`: running jobs.
"""

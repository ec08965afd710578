"""The plugin's dependencies, computed at install time: llama.cpp built for this CPU family
(engine_build.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from setuptools import setup  # noqa: E402

from engine_build import engine_requirement  # noqa: E402

setup(install_requires=["kernai", "numpy>=1.26", "gguf>=0.17", "safetensors>=0.4", engine_requirement()])

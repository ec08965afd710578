"""Schemathesis hooks for the fuzz test (``SCHEMATHESIS_HOOKS=fuzz_hooks``): a request that names a model
(a ``model`` in its body, a ``{model}`` or ``{name}`` in its path) names one the server has about half the
time, so the fuzzer reaches the workers instead of stopping at 404 ``model_not_found``."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

MODELS = os.environ.get("KERNAI_FUZZ_MODELS", "").split(",")
"""The models the server under test has (set by the test)."""


def _with_model(mapping: dict[str, Any], key: str) -> SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just(mapping), st.sampled_from([{**mapping, key: model} for model in MODELS]))


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> SearchStrategy[Any]:
    if isinstance(body, dict) and "model" in body:
        return _with_model(body, "model")
    return st.just(body)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> SearchStrategy[Any]:
    for key in ("model", "name"):
        if path_parameters and key in path_parameters:
            return _with_model(path_parameters, key)
    return st.just(path_parameters)

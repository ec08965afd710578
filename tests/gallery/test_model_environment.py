"""A model entry's ``environment``: refused from an untrusted gallery or a URL, kept from a trusted one;
variables that load code refused from anyone, before anything is fetched."""

from __future__ import annotations

import httpx
import yaml

from tests.gallery.conftest import Gallery, entry, wait_job

THREADS = {"environment": {"OMP_NUM_THREADS": "1"}}


def refused(reply: httpx.Response, param: str) -> str:
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param, error
    return str(error["message"])


def test_an_untrusted_gallery_entry_may_not_set_environment(gallery: Gallery, client: httpx.Client) -> None:
    gallery.add(entry("env-overrides", [], overrides=THREADS))
    gallery.add(entry("env-config-file", [], config_file="environment:\n  OMP_NUM_THREADS: '1'\n"))
    for name in ("env-overrides", "env-config-file"):
        message = refused(client.post("/models/apply", json={"id": f"test@{name}"}), "environment")
        assert f"model '{name}' from gallery 'test' sets 'environment'" in message
        assert "'trusted: true'" in message
        assert not (gallery.models_dir / f"{name}.yaml").exists()


def test_a_definition_from_a_url_may_not_set_environment(gallery: Gallery, client: httpx.Client) -> None:
    definition = gallery.root / "env-by-url.yaml"
    definition.write_text(yaml.safe_dump(entry("env-by-url", [], overrides=THREADS)))
    message = refused(client.post("/models/apply", json={"url": definition.as_uri()}), "environment")
    assert definition.as_uri() in message
    assert not (gallery.models_dir / "env-by-url.yaml").exists()


def test_a_trusted_gallery_entry_may_set_environment(gallery: Gallery, client: httpx.Client) -> None:
    gallery.add(entry("env-trusted", [], overrides=THREADS), gallery="mirror")
    status = wait_job(client, client.post("/models/apply", json={"id": "mirror@env-trusted"}).json()["uuid"])
    assert status["state"] == "done", status
    config = yaml.safe_load((gallery.models_dir / "env-trusted.yaml").read_text())
    assert config["environment"] == {"OMP_NUM_THREADS": "1"}


def test_variables_that_load_code_are_refused_from_a_trusted_gallery_and_the_request(
    gallery: Gallery, client: httpx.Client
) -> None:
    gallery.add(entry("env-preload", [], overrides={"environment": {"LD_PRELOAD": "x.so"}}), gallery="mirror")
    trusted = client.post("/models/apply", json={"id": "mirror@env-preload"})
    assert "'LD_PRELOAD' may not be set for a worker" in refused(trusted, "environment.LD_PRELOAD")
    own = {"id": "placeholder", "name": "env-own", "overrides": {"environment": {"PYTHONPATH": "/tmp"}}}
    requested = client.post("/models/apply", json=own)
    assert "'PYTHONPATH' may not be set for a worker" in refused(requested, "environment.PYTHONPATH")
    assert not (gallery.models_dir / "env-preload.yaml").exists()
    assert not (gallery.models_dir / "env-own.yaml").exists()


def test_the_request_may_set_environment_itself(gallery: Gallery, client: httpx.Client) -> None:
    """The overrides of ``/models/apply`` are the user's own, like a config written by hand."""
    own = {"id": "placeholder", "name": "env-mine", "overrides": THREADS}
    status = wait_job(client, client.post("/models/apply", json=own).json()["uuid"])
    assert status["state"] == "done", status
    config = yaml.safe_load((gallery.models_dir / "env-mine.yaml").read_text())
    assert config["environment"] == THREADS["environment"]

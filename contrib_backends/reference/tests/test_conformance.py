"""The reference backend passes the conformance kit that third-party authors run."""

# --8<-- [start:conformance]
from kernai.testing import BackendConformance


class TestReferenceBackend(BackendConformance):
    backend = "reference"
    model_config = {"dimensions": 8}


# --8<-- [end:conformance]

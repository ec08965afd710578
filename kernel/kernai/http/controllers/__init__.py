"""One module per API surface."""

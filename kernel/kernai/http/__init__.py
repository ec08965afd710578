"""The HTTP layer: a Litestar app with one controller per API surface."""

"""The HTTP layer: the Litestar app, the gate, the error base and route policy, the core's own routes and
what the API surfaces (:mod:`kernai.surfaces`) share."""

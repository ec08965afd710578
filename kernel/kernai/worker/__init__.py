"""One process per loaded model: the wire protocol, the process's main loop and the server's client."""

"""Wire formats of each API surface, as msgspec Structs."""

"""The integer types of every surface's wire structs and query parameters.

Integers in requests are bounded to 64 bits: msgspec accepts any JSON integer, but the worker
protocol (msgpack) and SQLite carry no larger one, so a bigger value is a 400 here, not an
``OverflowError`` (500) further on.
"""

from typing import Annotated

from litestar.params import Parameter
from msgspec import Meta

INT64_MAX = 2**63 - 1
Int64 = Annotated[int, Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
NonNegativeInt = Annotated[int, Meta(ge=0, le=INT64_MAX)]
PositiveInt = Annotated[int, Meta(ge=1, le=INT64_MAX)]
QueryInt64 = Annotated[int, Parameter(ge=-INT64_MAX - 1, le=INT64_MAX)]
"""A query parameter's integer (Litestar reads the bounds of a ``Parameter``, not of a ``Meta``)."""

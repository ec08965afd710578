"""The floor for bench/http_overhead.py: a bare Litestar + msgspec app with kernai's two routes' shapes."""

from litestar import Litestar, get, post
from msgspec import Struct


class Card(Struct):
    id: str
    owned_by: str
    object: str = "model"


class Tokens(Struct):
    tokens: list[int]


class TokenizeBody(Struct):
    model: str
    content: str


@get("/v1/models")
async def models() -> dict:
    return {"object": "list", "data": [Card("echo", "reference")]}


@post("/v1/tokenize", status_code=200)
async def tokenize(data: TokenizeBody) -> Tokens:
    return Tokens(list(data.content.encode()))


app = Litestar([models, tokenize])

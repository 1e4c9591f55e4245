"""Prompt and generation speed of the installed llama.cpp build, for comparing builds.

    python benchmarks/llama_speed.py [--generator gemma3-270m] [--runs 5] [--safe]

Prompts are cut from the seeds (about 600 tokens, the size of an answer prompt), evaluated from an
empty cache each run; then 64 tokens are generated greedily. Prints the median of the runs and the
library's compiled instruction set, so two builds can be compared by running this once with each
(e.g. PYTHONPATH=/path/to/other/build python benchmarks/llama_speed.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", default="gemma3-270m")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--safe", action="store_true", help="llama.cpp's safe configuration (no extra buffer types)")
    args = parser.parse_args()

    import llama_cpp

    from rag import llama_build, models
    from rag.generation import open_llama
    from rag.settings import Settings

    settings = Settings(manifest_path=ROOT / "models.txt")
    entry = models.find_entry(models.read_manifest(settings.manifest_path), args.generator, "generator")
    path = models.resolve(entry, ROOT, settings.models_dir)
    llm = open_llama(Path(path), n_ctx=2048, use_extra_bufts=not args.safe)
    seeds = sorted((ROOT / "seeds").glob("*.txt"))
    pp_rates, tg_rates, first_tokens = [], [], []
    for run in range(args.runs):
        text = seeds[run % len(seeds)].read_text("utf-8")
        tokens = llm.tokenize(text.encode("utf-8"))[: args.prompt_tokens]
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        prompt_s = time.perf_counter() - started
        pp_rates.append(len(tokens) / prompt_s)
        first_tokens.append(prompt_s * 1000)
        started, generated = time.perf_counter(), 0
        for _ in llm.generate([], temp=0.0, reset=False):  # continue after the evaluated prompt
            generated += 1
            if generated >= args.gen_tokens:
                break
        tg_rates.append(generated / (time.perf_counter() - started))
    features = llama_build.installed_features()
    print(f"llama-cpp-python {llama_cpp.__version__} [{llama_build.describe(features)}] "
          f"{'safe configuration' if args.safe else 'default configuration'}, {args.generator}, "
          f"median of {args.runs}: prompt {statistics.median(pp_rates):.0f} tok/s "
          f"({args.prompt_tokens} tokens in {statistics.median(first_tokens):.0f} ms), "
          f"generation {statistics.median(tg_rates):.1f} tok/s")


if __name__ == "__main__":
    main()

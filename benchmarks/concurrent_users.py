"""Ten people asking at once: start the web page with the real index and models, send N questions
concurrently through gradio_client, and report each one's total time (queueing included).

    python benchmarks/concurrent_users.py --users 10
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.evaluation import read_gold  # noqa: E402
from rag.engines import Engines  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.web import launch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="Repeat the burst; figures are over all rounds.")
    args = parser.parse_args()
    from gradio_client import Client

    engines = Engines(Settings.from_env())
    engines.get(None).warm_up()  # as `rag serve` does
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(engines, "127.0.0.1", port, block=False)
    questions = [q.question for q in read_gold(ROOT / "seeds" / "gold.jsonl") if not q.unanswerable][: args.users]
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    client.predict(questions[0], api_name="/ask")  # warm the model once

    def one(question: str) -> tuple[float, bool]:
        started = time.perf_counter()
        result = client.predict(question, api_name="/ask")
        return time.perf_counter() - started, bool(result["answer"])

    results, wall = [], 0.0
    for _ in range(args.rounds):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.users) as pool:
            results += list(pool.map(one, questions))
        wall += time.perf_counter() - started
    totals = sorted(t for t, _ in results)
    print(f"{args.users} concurrent questions x {args.rounds} rounds, {sum(ok for _, ok in results)} answered in {wall:.1f}s: "
          f"median total {statistics.median(totals):.2f}s, slowest {totals[-1]:.2f}s, fastest {totals[0]:.2f}s")
    demo.close()


if __name__ == "__main__":
    main()

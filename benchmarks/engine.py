"""The engine's scheduling quality and overhead: prints figures, asserts nothing.

1. 500 ``pause`` steps with random durations in a random DAG, run at a parallelism above
   the DAG's width: the makespan against the critical path (the best any scheduler can
   do). Goal: <= 1.05.
2. 500 ``pause`` steps of zero seconds, one after the other: the engine's own time per
   step (scheduling, the worker thread, templates, two journal commits). Goal: <= 2 ms.

    python -m benchmarks.engine [--steps 500] [--seed 7] [--repeat 3]

Each figure is the median of ``--repeat`` runs (the worst is shown too): threads on a
busy machine make single runs noisy.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from failover.config import Config
from failover.engine import Engine, RunStatus
from failover.playbook import Playbook
from failover.state import StateStore

CONFIG = {
    "service": "bench",
    "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "bench"}}},
    "targets": {"t": {}},
}


def random_dag(steps: int, chance: random.Random) -> dict[str, list[str]]:
    """Each step needs up to three of the 40 steps created just before it: long chains, moderate width."""
    ids = [f"s{i:03}" for i in range(steps)]
    return {
        step_id: chance.sample(ids[max(0, i - 40) : i], k=min(i, chance.randint(0, 3)))
        for i, step_id in enumerate(ids)
    }


def critical_path(needs: dict[str, list[str]], seconds: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for step_id, step_needs in needs.items():  # ids are in topological order
        finish[step_id] = max((finish[n] for n in step_needs), default=0.0) + seconds[step_id]
    return max(finish.values())


def width(needs: dict[str, list[str]]) -> int:
    """The largest set of steps none of which depends on another (Dilworth: steps minus a
    maximum matching in the reachability graph)."""
    ids = list(needs)
    index = {step_id: i for i, step_id in enumerate(ids)}
    reaches = [0] * len(ids)  # bitset of the steps each step (transitively) needs
    for i, step_id in enumerate(ids):
        for need in needs[step_id]:
            reaches[i] |= reaches[index[need]] | (1 << index[need])
    matched_to: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        bits, j = reaches[i], 0
        while bits:
            if bits & 1 and j not in seen:
                seen.add(j)
                if j not in matched_to or augment(matched_to[j], seen):
                    matched_to[j] = i
                    return True
            bits >>= 1
            j += 1
        return False

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 2 * len(ids) + 100))  # an augmenting path per step, at worst
    matching = sum(augment(i, set()) for i in range(len(ids)))
    return len(ids) - matching


def playbook(needs: dict[str, list[str]], seconds: dict[str, float]) -> Playbook:
    steps = [{"id": s, "action": "pause", "with": {"seconds": seconds[s]}, "needs": needs[s]} for s in needs]
    return Playbook.model_validate({"name": "bench", "steps": steps})


def timed_run(book: Playbook, parallelism: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        config = Config.model_validate({**CONFIG, "path": Path(directory) / "failover.yaml"})
        with StateStore(config.state_dir) as store:
            began = time.perf_counter()
            run = Engine(store, config).start(book, target="t", parallelism=parallelism)
            elapsed = time.perf_counter() - began
    assert run.status is RunStatus.SUCCEEDED, run.error
    return elapsed


def repeated(times: int, book: Playbook, parallelism: int) -> tuple[float, float]:
    """The median and the worst of ``times`` timed runs."""
    elapsed = [timed_run(book, parallelism) for _ in range(times)]
    return statistics.median(elapsed), max(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chance = random.Random(args.seed)

    needs = random_dag(args.steps, chance)
    seconds = {s: round(chance.uniform(0.01, 0.1), 4) for s in needs}
    best = critical_path(needs, seconds)
    dag_width = width(needs)
    print(f"random DAG: {args.steps} pause steps of 10-100 ms, width {dag_width}, "
          f"critical path {best:.3f}s, total work {sum(seconds.values()):.1f}s")
    for parallelism in (dag_width + 1, args.steps):
        median, worst = repeated(args.repeat, playbook(needs, seconds), parallelism)
        print(f"  parallelism {parallelism:>3}: makespan {median:.3f}s (worst {worst:.3f}s), "
              f"makespan / critical path = {median / best:.3f} (worst {worst / best:.3f}; goal <= 1.05)")

    chain = {f"s{i:03}": [f"s{i - 1:03}"] if i else [] for i in range(args.steps)}
    zero = dict.fromkeys(chain, 0.0)
    timed_run(playbook(chain, zero), 1)  # warm-up: imports, first SQLite pages
    median, worst = repeated(args.repeat, playbook(chain, zero), 1)
    print(f"overhead: {args.steps} zero-second steps in a chain took {median:.3f}s, "
          f"{median / args.steps * 1000:.2f} ms per step (worst {worst / args.steps * 1000:.2f}; goal <= 2 ms)")
    median, _ = repeated(args.repeat, playbook(random_dag(args.steps, chance), zero), 8)
    print(f"throughput: {args.steps} zero-second steps of a random DAG at parallelism 8 took {median:.3f}s, "
          f"{median / args.steps * 1000:.2f} ms per step")


if __name__ == "__main__":
    main()

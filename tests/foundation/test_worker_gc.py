"""A worker's garbage collector, as start-up leaves it. A full collection stops every request in
flight on the worker (20-65 ms under punch load, bench/README.md's sixteenth session), so
start-up freezes its own heap and full collections wait for 100 young (gen-1) collections
instead of Python's 10."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

import httpx

from unifocus.app import FULL_COLLECTION_AFTER_GEN1

# A fresh interpreter: the start-up heap frozen, as the app's start-up does, with the app's
# spacing of full collections or Python's own; then a load that keeps promoting objects to the
# old generation (as a worker's caches do while they fill), each batch dropped once a
# collection has moved it. Prints the gen-1 collections seen before each full one.
_DRIVE = textwrap.dedent("""
import gc, json, sys
from unifocus.app import freeze_startup_heap, space_full_collections
freeze_startup_heap()
if sys.argv[1] == "app":
    space_full_collections()
gen1, full_after = [0], []
batch = []
def count(phase, info):
    if phase != "stop":
        return
    batch.clear()
    if info["generation"] == 1:
        gen1[0] += 1
    elif info["generation"] == 2:
        full_after.append(gen1[0])
gc.callbacks.append(count)
while gen1[0] < int(sys.argv[2]):
    batch.append([])
gc.callbacks.remove(count)
print(json.dumps(full_after))
""")


def _full_collections(policy: str, gen1_collections: int) -> list[int]:
    out = subprocess.run([sys.executable, "-c", _DRIVE, policy, str(gen1_collections)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_full_collections_wait_for_a_hundred_young_ones() -> None:
    with_app = _full_collections("app", 3 * FULL_COLLECTION_AFTER_GEN1 + 10)
    # Spaced, not switched off: cyclic garbage that reaches the old generation is still reclaimed.
    assert len(with_app) == 3, with_app
    gaps = [b - a for a, b in zip([0, *with_app], with_app, strict=False)]
    assert all(gap >= FULL_COLLECTION_AFTER_GEN1 for gap in gaps), with_app
    # The same load under Python's own policy: a full collection once more than 10 gen-1
    # collections have run since the last one (and, nearly nothing being kept outside the
    # frozen heap, the promotions condition soon holds): 26 here, every 11.
    default = _full_collections("python", 3 * FULL_COLLECTION_AFTER_GEN1 + 10)
    assert len(default) >= 20, default


async def test_startup_leaves_the_worker_frozen_and_spaced(app_client: tuple[object, httpx.AsyncClient]) -> None:
    # The session's app has entered its lifespan, as each worker does.
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold()[2] == FULL_COLLECTION_AFTER_GEN1

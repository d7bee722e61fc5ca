"""Import-time benchmark: what `import openmeter_billing` costs a fresh interpreter.

Each statement runs in its own fresh interpreter (``python -c``), many times, interleaved so that
machine noise hits every row alike; the time is measured inside the interpreter around the
statement alone (interpreter start-up is excluded). Rows:

- ``httpx + pydantic``: the baseline, our two heavy dependencies, imported together;
- ``openmeter_billing``: the package (the async client and the error classes load eagerly);
- ``+ OpenMeterBilling()``: the package and one client constructed (no request);
- ``+ first resource``: and ``client.entitlements`` touched (its models load on first use);
- ``SyncOpenMeterBilling``: the blocking facade, which loads every resource;
- ``openmeter (official SDK)``: when it is installed (``pip install "openmeter==1.0.0b236"``, the
  last release that installs on Python 3.11).

The goal (the runtime issue): ``openmeter_billing`` / baseline <= 1.5.

Run: ``python benchmarks/import_time.py [--runs 15] [--json]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys

ROWS: dict[str, str] = {
    "httpx + pydantic": "import httpx, pydantic",
    "openmeter_billing": "import openmeter_billing",
    "+ OpenMeterBilling()": (
        "import openmeter_billing; openmeter_billing.OpenMeterBilling(base_url='http://127.0.0.1:1')"
    ),
    "+ first resource": (
        "import openmeter_billing; "
        "openmeter_billing.OpenMeterBilling(base_url='http://127.0.0.1:1').entitlements"
    ),
    "SyncOpenMeterBilling": "from openmeter_billing import SyncOpenMeterBilling",
    "openmeter (official SDK)": "import openmeter",
}
BASELINE = "httpx + pydantic"

TIMER = """
import time
_t = time.perf_counter()
{statement}
print((time.perf_counter() - _t) * 1000)
"""


def measure(statement: str) -> float:
    """Milliseconds the statement takes in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per row (>= 10)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    rows = dict(ROWS)
    if importlib.util.find_spec("openmeter") is None:
        del rows["openmeter (official SDK)"]
        print("official SDK not installed: pip install 'openmeter==1.0.0b236' to compare")
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for run in range(args.runs):
        order = list(rows.items())
        if run % 2:
            order.reverse()  # alternate the order so drift hits every row alike
        for name, statement in order:
            samples[name].append(measure(statement))
    base = statistics.median(samples[BASELINE])
    print(f"import time, {args.runs} fresh interpreters per row (ms)")
    print(f"{'row':<26} {'min':>8} {'median':>8} {'max':>8} {'vs baseline':>12}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:<26} {min(values):>8.1f} {median:>8.1f} {max(values):>8.1f} "
            f"{median / base:>11.2f}x"
        )
    ratio = statistics.median(samples["openmeter_billing"]) / base
    verdict = "meets" if ratio <= 1.5 else "misses"
    print(f"\nimport openmeter_billing / baseline = {ratio:.2f} ({verdict} the 1.5 goal)")
    if args.json:
        print(json.dumps({name: statistics.median(v) for name, v in samples.items()}))


if __name__ == "__main__":
    main()

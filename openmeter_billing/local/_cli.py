"""``openmeter-billing local`` (serve Local OpenMeter over HTTP) and ``openmeter-billing demo``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio

__all__ = ["register"]

SubParsers = Any  # argparse._SubParsersAction[argparse.ArgumentParser] is private API


def register(subparsers: SubParsers) -> None:
    """Add the ``local`` and ``demo`` subcommands to the ``openmeter-billing`` CLI."""
    local = subparsers.add_parser(
        "local",
        help="serve Local OpenMeter over HTTP (for benchmarks and non-Python clients)",
        description="Serve Local OpenMeter's API on a loopback address until Ctrl-C.",
    )
    local.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    local.add_argument("--port", type=int, default=8888, help="port (default 8888; 0 = any)")
    local.add_argument(
        "--api-key",
        default=None,
        help="require Authorization: Bearer <key> (default: no auth, like self-hosted OpenMeter)",
    )
    local.add_argument(
        "--faults",
        action="append",
        default=[],
        metavar="SPEC",
        help=(
            "inject a fault, repeatable: KIND[:key=value,...] with KIND fail, outage, delay, "
            "drop or ratelimit, e.g. fail:route=ingest,share=0.1,status=503 (see docs/local.md)"
        ),
    )
    local.add_argument(
        "--faults-seed", type=int, default=0, help="seed of the faults' random choices (default 0)"
    )
    local.set_defaults(func=_serve)

    demo = subparsers.add_parser(
        "demo",
        help="run the demo story on Local OpenMeter (or --remote)",
        description=(
            "Meter AI tokens for an organization: allowance, usage, limit, top-up and the "
            "monthly reset, printed step by step with balances."
        ),
    )
    demo.add_argument(
        "--remote",
        action="store_true",
        help="run against a real OpenMeter (OPENMETER_ENDPOINT, OPENMETER_TOKEN)",
    )
    demo.add_argument(
        "--settle-seconds",
        type=float,
        default=5.0,
        help="with --remote: wait this long before each balance read (events are async)",
    )
    demo.set_defaults(func=_demo)


def _serve(args: argparse.Namespace) -> int:
    from openmeter_billing import InvalidInputError
    from openmeter_billing.local import Faults, LocalOpenMeter
    from openmeter_billing.local._fault_spec import add_fault_spec
    from openmeter_billing.local._server import LoopbackServer

    # Over HTTP the clients wait in real time, so windows and rate limits use the wall clock.
    faults = Faults(seed=args.faults_seed, wall_clock=True)
    try:
        for spec in args.faults:
            add_fault_spec(faults, spec)
    except InvalidInputError as exc:
        print(f"openmeter-billing local: {exc}", file=sys.stderr)
        return 2
    local = LocalOpenMeter(api_key=args.api_key, faults=faults)
    server = LoopbackServer(local, host=args.host, port=args.port)
    print(f"Local OpenMeter listening on {server.url} (Ctrl-C to stop)", flush=True)
    server.serve_forever()
    print("stopped", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from openmeter_billing import OpenMeterBilling, OpenMeterBillingError
    from openmeter_billing.local import LocalOpenMeter
    from openmeter_billing.local._demo import DemoNames, demo_identity, run_demo, wait_seconds

    async def main() -> None:
        if args.remote:
            names = DemoNames.unique()
            async with OpenMeterBilling(identity=demo_identity(names)) as client:
                endpoint = os.environ.get("OPENMETER_ENDPOINT", "https://openmeter.cloud")
                await run_demo(
                    client,
                    names=names,
                    settle=wait_seconds(args.settle_seconds),
                    where=f"OpenMeter at {endpoint}",
                )
            return
        local = LocalOpenMeter()
        names = DemoNames()
        async with local.client(identity=demo_identity(names)) as client:
            await run_demo(client, clock=local.clock, names=names)

    try:
        anyio.run(main)
    except OpenMeterBillingError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0

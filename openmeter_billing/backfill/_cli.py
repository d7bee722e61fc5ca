"""``openmeter-billing backfill customers|subscriptions``: resumable imports from the shell.

Exit codes: 0 every item done; 1 some items failed (listed with reasons); 2 usage errors (a
source that cannot be read, bad options); 130 interrupted (the state is saved: rerun with
``--resume``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import APIError, ConfigurationError, InvalidInputError
from ._api import DEFAULT_RATE_LIMIT
from ._progress import Mode, ProgressPrinter
from ._report import BackfillReport
from ._runner import Unreadable
from ._sources import callable_items, count_lines, is_callable_ref, json_lines, principal
from ._state import StateFile

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

__all__ = ["register"]

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backfill customers`` and ``backfill subscriptions`` to a parser."""
    backfill = subparsers.add_parser(
        "backfill", help="import customers or subscriptions, resumably", description=__doc__
    )
    commands = backfill.add_subparsers(dest="backfill_command", metavar="SUBCOMMAND")
    backfill.set_defaults(func=lambda _args: _usage(backfill))

    customers = commands.add_parser(
        "customers", help="create or update a customer per user, organization or team"
    )
    _common(customers, "customers")
    customers.add_argument(
        "--scope",
        choices=("user", "organization", "team"),
        default=None,
        help="what each line of a JSONL file is (default user; not with module:callable)",
    )
    customers.set_defaults(func=_run, kind="customers")

    subscriptions = commands.add_parser(
        "subscriptions", help="grant entitlements for active subscriptions (apply_event)"
    )
    _common(subscriptions, "subscriptions")
    subscriptions.add_argument(
        "--catalog", metavar="SOURCE", help="catalog file or package.module:attr (plans)"
    )
    subscriptions.set_defaults(func=_run, kind="subscriptions", scope=None)


def _common(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="a .jsonl file (one JSON object a line) or package.module:callable",
    )
    parser.add_argument("--resume", action="store_true", help="skip what the state file has done")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(f"openmeter-billing-backfill-{kind}.json"),
        help="the checkpoint file (default: %(default)s)",
    )
    parser.add_argument("--concurrency", type=_positive_int, default=8, help="default 8")
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=DEFAULT_RATE_LIMIT if kind == "customers" else DEFAULT_RATE_LIMIT / 4,
        help="requests per second, or 'off' (default %(default)s)",
    )
    parser.add_argument("--retries", type=_non_negative_int, default=3, help="default 3")
    parser.add_argument("--base-url", help="OpenMeter URL (default: $OPENMETER_ENDPOINT)")
    parser.add_argument(
        "--client",
        metavar="MODULE:CALLABLE",
        help="builds your configured OpenMeterBilling (identity, id store, ledger, catalog)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="auto: a bar on a terminal, plain lines otherwise",
    )
    parser.add_argument(
        "--progress-every", type=float, default=5.0, help="seconds between plain lines"
    )
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _rate(text: str) -> float | None:
    if text.lower() in {"off", "none", "0"}:
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0 or 'off', got {text}")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return USAGE


def _run(args: argparse.Namespace) -> int:
    import anyio

    printer = ProgressPrinter(sys.stderr, _mode(args.progress), every=args.progress_every)
    try:
        items, total = _items(args)
        report = anyio.run(_backfill, args, items, total, printer)
    except KeyboardInterrupt:
        printer.close()
        done = printer.last.settled if printer.last else 0
        print(
            f"interrupted after {done} items; state saved to {args.state}: rerun with --resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    except (InvalidInputError, ConfigurationError, OSError) as exc:
        printer.close()
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except APIError as exc:  # 401/403 stop the run: every other item would fail alike
        printer.close()
        print(
            f"error: OpenMeter refused the backfill: {exc}; state saved to {args.state}",
            file=sys.stderr,
        )
        return FAILED
    printer.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return OK if report.ok else FAILED


def _mode(choice: str) -> Mode:
    if choice == "auto":
        return "bar" if sys.stderr.isatty() else "lines"
    return "none" if choice == "none" else ("bar" if choice == "bar" else "lines")


async def _backfill(
    args: argparse.Namespace, items: Any, total: int | None, printer: ProgressPrinter
) -> BackfillReport:
    client = _client(args)
    async with client:
        options: dict[str, Any] = {
            "concurrency": args.concurrency,
            "rate_limit": args.rate_limit,
            "retries": args.retries,
            "checkpoint": StateFile(args.state, resume=args.resume),
            "on_progress": printer,
            "total": total,
        }
        if args.kind == "customers":
            return await client.backfill.customers(items, **options)
        return await client.backfill.subscriptions(items, **options)


def _client(args: argparse.Namespace) -> OpenMeterBilling:
    from .._client import OpenMeterBilling
    from ._sources import load_callable

    if args.client:
        if args.base_url or getattr(args, "catalog", None):
            raise InvalidInputError(
                "--client builds the whole client: configure base_url and catalog there",
                field="--client",
            )
        client = load_callable(args.client, "--client")
        if not isinstance(client, OpenMeterBilling):
            raise ConfigurationError(
                f"--client {args.client} gave a {type(client).__name__}, not an OpenMeterBilling"
            )
        return client
    catalog = None
    if getattr(args, "catalog", None):
        from ..catalog.loader import load_catalog

        catalog = load_catalog(args.catalog)
    return OpenMeterBilling(base_url=args.base_url, catalog=catalog)


def _items(args: argparse.Namespace) -> tuple[Iterable[Any] | AsyncIterable[Any], int | None]:
    source: str = args.source
    if is_callable_ref(source):
        if args.scope is not None:
            raise InvalidInputError(
                "--scope describes JSONL rows; module:callable yields principals already",
                field="--scope",
            )
        items = callable_items(source)
        return items, len(items) if isinstance(items, (list, tuple)) else None
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(
            f"--from {source}: no such file",
            field="--from",
            hint="pass a .jsonl file or package.module:callable",
        )
    rows = json_lines(path)
    if args.kind == "customers":
        return _principals(rows, args.scope or "user"), count_lines(path)
    return _events(rows), count_lines(path)


def _principals(rows: Iterator[tuple[int, Any] | Unreadable], scope: Any) -> Iterator[Any]:
    unknown: set[str] = set()
    warned = False
    for row in rows:
        if isinstance(row, Unreadable):
            yield row
            continue
        number, value = row
        try:
            yield principal(number, value, scope, unknown)
        except InvalidInputError as exc:
            yield Unreadable(f"line {number}", exc)
        if unknown and not warned:
            warned = True
            print(f"note: ignoring columns {sorted(unknown)} (not {scope} fields)", file=sys.stderr)


def _events(rows: Iterator[tuple[int, Any] | Unreadable]) -> Iterator[Any]:
    for row in rows:
        if isinstance(row, Unreadable):
            yield row
            continue
        number, value = row
        if not isinstance(value, dict):
            error = InvalidInputError(
                f"a JSON {type(value).__name__}, not an object",
                field=f"line {number}",
            )
            yield Unreadable(f"line {number}", error)
            continue
        yield value

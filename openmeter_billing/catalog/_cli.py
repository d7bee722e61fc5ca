"""``openmeter-billing catalog``: check, compile, push and schema from the command line.

Exit codes: 0 ok; 1 the catalog is invalid, strict warnings, or push conflicts; 2 usage errors
(a source that cannot be found or read, an unknown plan, add-on or provider).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .._exceptions import APIError, CatalogError, ConfigurationError, InvalidInputError
from .compile_openmeter import (
    compile_openmeter_entitlements,
    compile_openmeter_features,
    compile_openmeter_meters,
)
from .compile_providers import PROVIDERS, compile_payment_catalog
from .dsl import Catalog
from .loader import load_catalog
from .schema import catalog_json_schema
from .validate import validate_catalog

__all__ = ["register"]

OK, INVALID, USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``catalog`` command and its subcommands to a parser."""
    catalog = subparsers.add_parser(
        "catalog", help="check, compile and push the billing catalog", description=__doc__
    )
    commands = catalog.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")
    catalog.set_defaults(func=lambda _args: _usage(catalog))

    check = commands.add_parser("check", help="validate a catalog (use in CI)")
    _source(check)
    check.add_argument("--json", action="store_true", help="print issues as JSON")
    check.set_defaults(func=_guarded(_check))

    compile_ = commands.add_parser("compile", help="show what a provider or OpenMeter gets")
    _source(compile_)
    target = compile_.add_mutually_exclusive_group(required=True)
    target.add_argument("--provider", choices=PROVIDERS, help="a payment provider")
    target.add_argument("--openmeter", action="store_true", help="OpenMeter request bodies")
    compile_.add_argument("--strict", action="store_true", help="fail on provider warnings")
    compile_.add_argument("--plan", help="with --openmeter: the plan to compile entitlements for")
    compile_.add_argument(
        "--addon",
        action="append",
        default=[],
        metavar="KEY[=QTY]",
        help="with --openmeter --plan: an add-on (repeatable)",
    )
    compile_.add_argument("--json", action="store_true", help="print JSON")
    compile_.set_defaults(func=_guarded(_compile))

    push = commands.add_parser("push", help="create missing meters and features in OpenMeter")
    _source(push)
    push.add_argument("--dry-run", action="store_true", help="only show the plan")
    push.add_argument(
        "--archive-missing",
        action="store_true",
        help="archive features this library created that the catalog no longer has",
    )
    push.add_argument("--base-url", help="OpenMeter URL (default: $OPENMETER_ENDPOINT)")
    push.add_argument("--json", action="store_true", help="print the plan as JSON")
    push.set_defaults(func=_guarded(_push))

    schema = commands.add_parser("schema", help="print the JSON Schema of catalog files")
    schema.set_defaults(func=lambda _args: _print_json(catalog_json_schema()))


def _source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="catalog file or package.module:attr")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return USAGE


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Map errors to exit codes and readable messages instead of tracebacks."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CatalogError as exc:
            _print_issues(exc, getattr(args, "json", False))
            return INVALID
        except (InvalidInputError, ConfigurationError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE
        except APIError as exc:
            print(f"error: OpenMeter request failed: {exc}", file=sys.stderr)
            return INVALID

    return run


def _print_issues(error: CatalogError, as_json: bool) -> None:
    if as_json:
        _print_json({"ok": False, "issues": [_issue_dict(i) for i in error.issues]})
        return
    count = len(error.issues)
    print(f"catalog invalid: {count} problem{'s' if count != 1 else ''}")
    for issue in error.issues:
        print(f"  {issue.path} [{issue.code}]: {issue.message}")
        if issue.value is not None:
            print(f"      value: {issue.value!r}")
        if issue.hint:
            print(f"      fix: {issue.hint}")


def _issue_dict(issue: Any) -> dict[str, Any]:
    value = issue.value
    if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
        value = repr(value)
    return {
        "path": issue.path,
        "code": issue.code,
        "message": issue.message,
        "value": value,
        "hint": issue.hint,
    }


def _print_json(data: Any) -> int:
    print(json.dumps(data, indent=2, default=str))
    return OK


def _check(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.source)
    issues = validate_catalog(catalog)
    if issues:
        raise CatalogError(issues)
    if args.json:
        return _print_json({"ok": True, "issues": [], "counts": _counts(catalog)})
    summary = ", ".join(f"{name}: {n}" for name, n in _counts(catalog).items())
    print(f"catalog OK: {summary}")
    return OK


def _counts(catalog: Catalog) -> dict[str, int]:
    sections = ("meters", "features", "plans", "addons", "topups")
    return {name: len(getattr(catalog, name)) for name in sections}


def _compile(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.source)
    if args.openmeter:
        return _compile_openmeter(args, catalog)
    if args.plan or args.addon:
        raise InvalidInputError("--plan and --addon go with --openmeter", field="--plan")
    result = compile_payment_catalog(catalog, args.provider, strict=args.strict)
    if args.json:
        return _print_json(result.to_dict())
    print(f"{result.provider}: {len(result.products)} products, {len(result.prices)} prices")
    for product in result.products:
        ident = product.product_id or "(new)"
        print(f"  product {product.kind} {product.key}: {product.strategy} {ident}")
    for price in result.prices:
        ident = price.price_id or "(new)"
        money = f"{price.amount} {price.currency}/{price.interval}"
        print(f"  price {price.lookup_key}: {money} {price.strategy} {ident}")
    for warning in result.warnings:
        print(f"  warning {warning.path} [{warning.code}]: {warning.message}")
    return OK


def _compile_openmeter(args: argparse.Namespace, catalog: Catalog) -> int:
    if args.strict:
        raise InvalidInputError("--strict goes with --provider", field="--strict")
    if args.plan is None:
        if args.addon:
            raise InvalidInputError("--addon needs --plan", field="--addon")
        data: Any = {
            "meters": compile_openmeter_meters(catalog),
            "features": compile_openmeter_features(catalog),
        }
    else:
        data = {"entitlements": compile_openmeter_entitlements(catalog, args.plan, _addons(args))}
    if args.json:
        return _print_json(data)
    for section, bodies in data.items():
        print(f"{section}:")
        for body in bodies:
            print(f"  {json.dumps(body, sort_keys=True)}")
    return OK


def _addons(args: argparse.Namespace) -> dict[str, int]:
    addons: dict[str, int] = {}
    for item in args.addon:
        key, _, quantity = item.partition("=")
        if quantity and not quantity.isdigit():
            raise InvalidInputError(
                f"add-on quantity must be a whole number, got {quantity!r}",
                field="--addon",
                hint="write KEY or KEY=2",
            )
        addons[key] = addons.get(key, 0) + (int(quantity) if quantity else 1)
    return addons


def _push(args: argparse.Namespace) -> int:
    import anyio

    from .._client import OpenMeterBilling
    from .push import push_catalog

    catalog = load_catalog(args.source)
    catalog.check()

    async def run() -> Any:
        async with OpenMeterBilling(base_url=args.base_url) as client:
            return await push_catalog(
                client, catalog, dry_run=args.dry_run, archive_missing=args.archive_missing
            )

    plan = anyio.run(run)
    if args.json:
        _print_json(plan.to_dict())
    else:
        print(plan.render())
    return INVALID if plan.conflicts else OK

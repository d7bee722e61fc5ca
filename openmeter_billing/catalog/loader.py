"""Load a catalog from a Python object (``package.module:attribute``) or a JSON/TOML/YAML file.

The CLI and CI use this, so a catalog can live next to the code (a `Catalog` built with
`define_catalog`) or in a data file that non-Python tools can read too.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .._exceptions import CatalogError, CatalogIssue, InvalidInputError
from .dsl import Catalog

__all__ = ["FILE_SUFFIXES", "load_catalog"]

#: File suffixes `load_catalog` reads.
FILE_SUFFIXES = (".json", ".toml", ".yaml", ".yml")


def load_catalog(source: str | Path) -> Catalog:
    """Read a catalog. Rules are not checked here: call `Catalog.check` or `validate_catalog`.

    Args:
        source: A path ending in ``.json``, ``.toml``, ``.yaml`` or ``.yml``, or
            ``package.module:attribute`` naming a `Catalog` (or a plain-data mapping).

    Raises:
        InvalidInputError: the source cannot be found or read (missing file, unknown suffix,
            module or attribute, missing optional parser). ``field`` is ``"source"``.
        CatalogError: the file is not valid JSON/TOML/YAML or does not have a catalog's shape.
    """
    text = str(source)
    if isinstance(source, Path) or text.lower().endswith(FILE_SUFFIXES) or ":" not in text:
        return _load_file(Path(source))
    return _load_object(text)


def _load_file(path: Path) -> Catalog:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise InvalidInputError(
            f"cannot tell the catalog format of {str(path)!r}",
            field="source",
            hint="use a .json, .toml, .yaml or .yml file, or package.module:attribute",
        )
    if not path.is_file():
        raise InvalidInputError(
            f"catalog file {str(path)!r} does not exist",
            field="source",
            hint="check the path (relative paths start at the current directory)",
        )
    raw = path.read_bytes()
    if suffix == ".json":
        data = _parse(path, lambda: json.loads(raw))
    elif suffix == ".toml":
        toml = _toml_module()
        data = _parse(path, lambda: toml.loads(raw.decode("utf-8")))
    else:
        yaml = _yaml_module()
        data = _parse(path, lambda: yaml.safe_load(raw))
    return Catalog.from_data(data)


def _parse(path: Path, parse: Any) -> Any:
    try:
        return parse()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _parse_error(path, exc) from exc
    except Exception as exc:  # yaml.YAMLError does not derive from ValueError
        if type(exc).__module__.startswith("yaml"):
            raise _parse_error(path, exc) from exc
        raise


def _parse_error(path: Path, exc: Exception) -> CatalogError:
    issue = CatalogIssue(
        path="$",
        message=f"{path.name} is not valid {path.suffix.lstrip('.').upper()}: {exc}",
        hint="fix the syntax at the position shown",
        code="parse_error",
    )
    return CatalogError([issue])


def _toml_module() -> ModuleType:
    """``tomllib`` (3.11+) or the ``tomli`` backport on 3.10."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise InvalidInputError(
        f"reading TOML catalogs on Python {sys.version_info.major}.{sys.version_info.minor} "
        "needs the tomli package",
        field="source",
        hint="pip install tomli, or use a .json catalog",
    )


def _yaml_module() -> ModuleType:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise InvalidInputError(
            "reading YAML catalogs needs PyYAML",
            field="source",
            hint="pip install 'openmeter-billing[yaml]', or use a .json or .toml catalog",
        ) from None


def _load_object(spec: str) -> Catalog:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(
            f"{spec!r} is not package.module:attribute",
            field="source",
            hint="e.g. app.billing:catalog",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInputError(
            f"cannot import module {module_name!r}: {exc}",
            field="source",
            hint="run from your project root or add it to PYTHONPATH",
        ) from exc
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise InvalidInputError(
                f"module {module_name!r} has no attribute {attribute!r}",
                field="source",
                hint="name the variable that holds your define_catalog(...) result",
            )
        value = getattr(value, part)
    if isinstance(value, Catalog):
        return value
    if isinstance(value, dict):
        return Catalog.from_data(value)
    raise InvalidInputError(
        f"{spec} is a {type(value).__name__}, not a Catalog",
        field="source",
        hint="point at the result of define_catalog(...)",
    )

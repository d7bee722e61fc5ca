"""Extract, from OpenMeter's OpenAPI document, the request rules of the operations Local OpenMeter
serves: parameters and bodies with their constraints, ``$ref`` kept by schema name.

``python tests/local/_spec_rules.py > openmeter_billing/local/api/request_rules.py`` regenerates the
emulator's own copy (the package never reads the spec at run time); the contract test checks the
copy is current and generates negative requests from the same extraction.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEEP = frozenset(
    {"type", "enum", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
     "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "required", "properties",
     "additionalProperties", "items", "anyOf", "oneOf", "allOf", "nullable", "discriminator",
     "$ref", "readOnly"}
)  # fmt: skip


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _slim(node: Any, doc: dict[str, Any], names: set[str]) -> Any:
    if isinstance(node, list):
        return [_slim(item, doc, names) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        if name not in names:
            names.add(name)
            _slim(doc["components"]["schemas"][name], doc, names)
        return {"$ref": name}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {k: _slim(v, doc, names) for k, v in value.items()}
        elif key == "discriminator":
            out[key] = {
                "propertyName": value["propertyName"],
                "mapping": {k: _ref_name(v) for k, v in value.get("mapping", {}).items()},
            }
            for ref in value.get("mapping", {}).values():
                _slim({"$ref": ref}, doc, names)
        else:
            out[key] = _slim(value, doc, names)
    return out


def _param(raw: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in raw:
        raw = doc["components"]["parameters"][_ref_name(raw["$ref"])]
    return raw


def extract(
    doc: dict[str, Any], routes: list[tuple[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(operations, schemas): per "METHOD template", its params and body media types."""
    names: set[str] = set()
    operations: dict[str, Any] = {}
    for method, template in routes:
        op = doc["paths"][template][method.lower()]
        params = []
        for raw in doc["paths"][template].get("parameters", []) + op.get("parameters", []):
            p = _param(raw, doc)
            params.append(
                {"name": p["name"], "in": p["in"], "required": bool(p.get("required")),
                 "style": p.get("style", "form"), "schema": _slim(p.get("schema", {}), doc, names)}
            )  # fmt: skip
        body = op.get("requestBody")
        bodies = None
        if body is not None:
            bodies = {
                media: _slim(content.get("schema", {}), doc, names)
                for media, content in body["content"].items()
            }
        operations[f"{method} {template}"] = {
            "params": params,
            "body_required": bool(body and body.get("required")),
            "bodies": bodies,
        }
    schemas: dict[str, Any] = {}
    for name in sorted(names):
        schemas[name] = _slim(doc["components"]["schemas"][name], doc, set(names))
    return operations, schemas


def render(operations: dict[str, Any], schemas: dict[str, Any]) -> str:
    head = '''# ruff: noqa: E501
"""OpenMeter's request rules for the operations Local OpenMeter serves (generated; do not edit).

Extracted from OpenMeter's OpenAPI document by ``tests/local/_spec_rules.py``: per operation its
parameters and request bodies, with the constraints (types, enums, formats, required, bounds,
lengths, patterns, item counts); schemas referenced by name. The emulator validates every request
against these before a handler runs, as OpenMeter's router does, without reading the spec.
"""

from typing import Any

# fmt: off
'''
    return (
        head
        + "OPERATIONS: dict[str, Any] = "
        + pprint.pformat(operations, width=100, sort_dicts=True)
        + "\n\nSCHEMAS: dict[str, Any] = "
        + pprint.pformat(schemas, width=100, sort_dicts=True)
        + "\n"
    )


def main() -> None:
    import _spec

    from openmeter_billing.local import LocalOpenMeter

    operations, schemas = extract(_spec.document(), LocalOpenMeter.routes())
    sys.stdout.write(render(operations, schemas))


if __name__ == "__main__":
    main()

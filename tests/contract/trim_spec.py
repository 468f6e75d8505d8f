"""Regenerate the pinned parts of Stripe's OpenAPI spec that the contract test and the sandbox use.

    .venv/bin/python -m tests.contract.trim_spec /path/to/spec3.yaml

Reads the published spec (stripe/openapi `spec3.yaml` or `spec3.json`; YAML needs PyYAML, in the
`test` extra) and writes two files, so neither the tests nor the sandbox ever read the spec:

* `tests/contract/stripe_spec.json`: the component schemas reachable from the objects the sandbox
  serves (`ROOT_SCHEMAS`), the operations of the paths it serves or the gateway calls
  (`PATHS`: query/path parameters and form bodies), and `x-object-schemas`, the `object` value →
  schema name map the contract checker validates by. Descriptions are dropped (size), everything
  a validator reads is kept as published.
* `shub_pay/sandbox/spec_expandable.py`: for every schema in that set, its `x-expandableFields`
  and, per field, the schemas one level down (the expansion resources of an id, the sub-object of
  a nested field, `list:<schema>` for an embedded list): what `expand[]` may name, level by level.
"""

from __future__ import annotations

import json
import pprint
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SPEC_OUT = REPO / "tests" / "contract" / "stripe_spec.json"
EXPANDABLE_OUT = REPO / "shub_pay" / "sandbox" / "spec_expandable.py"

# Objects the sandbox serves or will serve (DESIGN.md §10), and what expansion can reach.
ROOT_SCHEMAS = (
    "account",
    "account_link",
    "login_link",
    "application",
    "application_fee",
    "fee_refund",
    "balance",
    "balance_transaction",
    "charge",
    "checkout.session",
    "item",
    "price",
    "product",
    "customer",
    "deleted_customer",
    "dispute",
    "event",
    "payment_intent",
    "payment_method",
    "payout",
    "refund",
    "transfer",
    "transfer_reversal",
    "webhook_endpoint",
    "deleted_webhook_endpoint",
    "error",
)
PATHS = (
    "/v1/accounts",
    "/v1/accounts/{account}",
    "/v1/accounts/{account}/login_links",
    "/v1/account_links",
    "/v1/application_fees",
    "/v1/application_fees/{id}",
    "/v1/application_fees/{id}/refunds",
    "/v1/application_fees/{fee}/refunds/{id}",
    "/v1/balance",
    "/v1/balance_transactions",
    "/v1/balance_transactions/{id}",
    "/v1/charges",
    "/v1/charges/{charge}",
    "/v1/charges/{charge}/refunds",
    "/v1/charges/{charge}/refunds/{refund}",
    "/v1/checkout/sessions",
    "/v1/checkout/sessions/{session}",
    "/v1/checkout/sessions/{session}/expire",
    "/v1/checkout/sessions/{session}/line_items",
    "/v1/customers/{customer}",
    "/v1/disputes",
    "/v1/disputes/{dispute}",
    "/v1/events",
    "/v1/events/{id}",
    "/v1/payment_intents",
    "/v1/payment_intents/{intent}",
    "/v1/payment_methods/{payment_method}",
    "/v1/payouts",
    "/v1/payouts/{payout}",
    "/v1/prices",
    "/v1/prices/{price}",
    "/v1/products",
    "/v1/products/{id}",
    "/v1/refunds",
    "/v1/refunds/{refund}",
    "/v1/transfers",
    "/v1/transfers/{transfer}",
    "/v1/transfers/{id}/reversals",
    "/v1/transfers/{transfer}/reversals/{id}",
    "/v1/webhook_endpoints",
    "/v1/webhook_endpoints/{webhook_endpoint}",
)
DROPPED_KEYS = frozenset({"description", "x-stripeBypassValidation"})
REF = "#/components/schemas/"


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROPPED_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF):
            found.add(ref[len(REF) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def closure(schemas: dict[str, Any], roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(refs(schemas[name]) - seen)
    return seen


def operations(paths: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for path in PATHS:
        if path not in paths:
            continue
        kept[path] = {}
        for method, operation in paths[path].items():
            entry: dict[str, Any] = {
                "operationId": operation.get("operationId"),
                "parameters": operation.get("parameters", []),
            }
            body = operation.get("requestBody", {}).get("content", {})
            form = body.get("application/x-www-form-urlencoded")
            if form is not None:
                entry["requestBody"] = form.get("schema", {})
            kept[path][method] = entry
    return strip(kept)


def object_schemas(schemas: dict[str, Any], names: set[str]) -> dict[str, str]:
    """`object` value → schema name; `deleted_x` schemas are keyed `x#deleted`."""
    mapping: dict[str, str] = {}
    for name in sorted(names):
        values = schemas[name].get("properties", {}).get("object", {}).get("enum", [])
        if len(values) != 1:
            continue
        key = values[0] + ("#deleted" if name.startswith("deleted_") else "")
        mapping.setdefault(key, name)
    return mapping


def _children(field: Any) -> list[str]:
    """Schemas one level below a field: `$ref`s in it, `list:<schema>` for embedded lists."""
    if not isinstance(field, dict):
        return []
    expansion = field.get("x-expansionResources", {}).get("oneOf", [])
    if expansion:
        return sorted({r["$ref"][len(REF) :] for r in expansion})
    props = field.get("properties", {})
    if props.get("object", {}).get("enum") == ["list"]:
        items = props.get("data", {}).get("items", {})
        return [f"list:{name}" for name in sorted(refs(items))]
    if field.get("type") == "array":
        return _children(field.get("items", {}))
    return sorted(refs(field))


def expandable(schemas: dict[str, Any], names: set[str]) -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = {}
    for name in sorted(names):
        schema = schemas[name]
        fields = schema.get("x-expandableFields", [])
        props = schema.get("properties", {})
        table[name] = {field: _children(props.get(field)) for field in fields}
    return table


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[0])
    spec = load(source)
    schemas = spec["components"]["schemas"]
    kept_ops = operations(spec["paths"])
    names = closure(schemas, set(ROOT_SCHEMAS) | refs(kept_ops))
    trimmed = {
        "info": {
            "source": f"stripe/openapi {source.name}",
            "version": spec.get("info", {}).get("version"),
            "trimmed_by": "tests/contract/trim_spec.py",
        },
        "openapi": spec.get("openapi"),
        "x-object-schemas": object_schemas(schemas, names),
        "paths": kept_ops,
        "components": {"schemas": {n: strip(schemas[n]) for n in sorted(names)}},
    }
    SPEC_OUT.write_text(json.dumps(trimmed, sort_keys=True, separators=(",", ":")) + "\n")
    table = expandable(schemas, names)
    EXPANDABLE_OUT.write_text(
        '"""Expandable fields of Stripe\'s objects: the OpenAPI spec\'s `x-expandableFields`.\n\n'
        f"Generated by tests/contract/trim_spec.py from {source.name}\n"
        f"(API version {spec.get('info', {}).get('version')}); do not edit.\n"
        "schema → field → schemas one level down (`list:<schema>` for an embedded list).\n"
        '"""\n\n'
        "EXPANDABLE: dict[str, dict[str, tuple[str, ...]]] = "
        + pprint.pformat(
            {k: {f: tuple(c) for f, c in v.items()} for k, v in table.items() if v},
            width=99,
            sort_dicts=True,
        )
        + "\n\nOBJECT_SCHEMAS: dict[str, str] = "
        + pprint.pformat(trimmed["x-object-schemas"], width=99, sort_dicts=True)
        + "\n"
    )
    # The package is held to `ruff format`: format the generated module the same way.
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(EXPANDABLE_OUT)])
    print(f"{len(names)} schemas, {len(kept_ops)} paths -> {SPEC_OUT.relative_to(REPO)}")
    print(f"expandable fields of {len(table)} schemas -> {EXPANDABLE_OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

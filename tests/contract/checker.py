"""The contract: the sandbox's answers and the gateway's requests against Stripe's OpenAPI spec.

The spec is the pinned, trimmed copy beside this file (`stripe_spec.json`, written by
`trim_spec.py`); nothing here reads the published spec. Validation is openapi-schema-validator's
OAS 3.0 dialect (`nullable`, OpenAPI's `type`/`anyOf`/`required` rules) on jsonschema.

* **Objects.** Every JSON value with an `object` field that names a schema (`x-object-schemas`:
  `charge`, `checkout.session`, `balance_transaction`, `payout`, `fee_refund`, … — any type the
  spec has, so objects the sandbox gains later are covered without a change here) is validated
  against its component schema, wherever it sits: a response, a list page's `data`, an expanded
  field, an event's `data.object`. Required fields, types, enums and nullability are checked;
  fields the pinned version does not know are allowed (the schemas are open, as Stripe's are).
  Error answers are validated against `error`.
* **`*.updated` events** carry a non-empty `data.previous_attributes`.
* **Requests.** A request is matched to its operation (method + path template); its query (GET,
  DELETE) or form body (POST) is decoded from Stripe's bracket encoding and every parameter is
  checked against the operation's parameters: unknown names, wrong types (form values are
  strings, so an integer is a string of digits and a boolean `true`/`false`), enums, lengths.
* **Deviations** the pinned spec cannot describe are listed in `ALLOWED` with their reason; each
  entry must be used, or the suite says it is stale.

Validators are built once per schema and an identical object is validated once (keyed by its
canonical JSON): most answers repeat objects already seen.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from jsonschema import TypeChecker
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator

from shub_pay.sandbox.wire import decode_form

SPEC_PATH = Path(__file__).with_name("stripe_spec.json")
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
OBJECT_SCHEMAS: dict[str, str] = SPEC["x-object-schemas"]

# (schema, field path) → why the sandbox may differ from the pinned 2023-08-16 spec there.
# A field path is dotted from the object (`payment_method_types`, `outcome.type`).
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Violation:
    where: str  # e.g. "GET /v1/charges/{charge} response" or "gateway POST /v1/refunds"
    subject: str  # object type, or the operation
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}.{self.field}: {self.message} ({self.where})"


def _form_is_integer(checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (
        isinstance(value, str) and bool(re.fullmatch(r"-?\d+", value))
    )


def _form_is_number(checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"-?\d+(\.\d+)?", value))


def _form_is_boolean(checker: Any, value: Any) -> bool:
    return isinstance(value, bool) or value in ("true", "false")


def _nullable(keyword: Any) -> Any:
    """OAS 3.0.3: `nullable: true` admits null whatever the schema's other keywords say.

    openapi-schema-validator applies `nullable` in `type` only, but Stripe's spec writes a
    nullable reference as `{anyOf: [{$ref}], nullable: true}` and a nullable enum as
    `{enum: [...], nullable: true}` (no `type` beside them); its SDKs read both as optional. So
    these keywords let null through when the same schema says `nullable: true`.
    """

    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if instance is None and schema.get("nullable") is True:
            return
        yield from keyword(validator, value, instance, schema)

    return check


_KEYWORDS = OAS30Validator.VALIDATORS
StripeValidator: Any = extend(
    OAS30Validator,
    {name: _nullable(_KEYWORDS[name]) for name in ("anyOf", "oneOf", "allOf", "enum")},
)

# Form-encoded parameters arrive as strings: the type checks read them as Stripe parses them.
_FORM_TYPES: TypeChecker = StripeValidator.TYPE_CHECKER.redefine_many(
    {"integer": _form_is_integer, "number": _form_is_number, "boolean": _form_is_boolean}
)
FormValidator: Any = extend(StripeValidator, type_checker=_FORM_TYPES)


def _deepest(error: ValidationError) -> ValidationError:
    """The innermost cause of an `anyOf`/`oneOf` failure: the branch that got furthest."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or [])))
    return error


def _field(error: ValidationError) -> str:
    error = _deepest(error)
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        if match:
            parts.append(match.group(1))
    if error.validator == "additionalProperties":
        match = re.search(r"\('([^']+)'", error.message)
        if match:
            parts.append(match.group(1))
    return ".".join(parts) or "(root)"


def _message(error: ValidationError) -> str:
    return _deepest(error).message[:300]


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")


class ContractChecker:
    def __init__(self) -> None:
        self._validators: dict[str, Any] = {}
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()
        self.violations: list[Violation] = []
        self.objects: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self.allowed_used: set[tuple[str, str]] = set()
        self._routes = [
            (method.upper(), template, _template_regex(template), operation)
            for template, methods in SPEC["paths"].items()
            for method, operation in methods.items()
        ]

    # -- objects -----------------------------------------------------------------------------
    def _validator(self, schema: str) -> Any:
        found = self._validators.get(schema)
        if found is None:
            root = {
                "components": SPEC["components"],
                "allOf": [{"$ref": f"#/components/schemas/{schema}"}],
            }
            found = self._validators[schema] = StripeValidator(root)
        return found

    def check_payload(self, where: str, status: int, payload: Any) -> list[Violation]:
        found: list[Violation] = []
        if status >= 400 and isinstance(payload, dict) and "error" in payload:
            self._check_object(where, "error", payload, found)
        else:
            self._walk(where, payload, found)
        return found

    def _walk(self, where: str, node: Any, found: list[Violation]) -> None:
        if isinstance(node, dict):
            kind = node.get("object")
            if isinstance(kind, str):
                key = kind + ("#deleted" if node.get("deleted") is True else "")
                schema = OBJECT_SCHEMAS.get(key)
                if schema is not None:
                    self._check_object(where, schema, node, found)
                if schema == "event":
                    self._check_updated(where, node, found)
            for value in node.values():
                if isinstance(value, dict | list):
                    self._walk(where, value, found)
        elif isinstance(node, list):
            for value in node:
                if isinstance(value, dict | list):
                    self._walk(where, value, found)

    def _check_object(
        self, where: str, schema: str, node: dict[str, Any], out: list[Violation]
    ) -> None:
        digest = hashlib.blake2b(
            schema.encode() + orjson.dumps(node, option=orjson.OPT_SORT_KEYS), digest_size=16
        ).digest()
        with self._lock:
            self.objects[schema] += 1
            if digest in self._seen:
                return
        fresh: list[Violation] = []
        for error in self._validator(schema).iter_errors(node):
            field = _field(error)
            if not self._allowed(schema, field):
                fresh.append(Violation(where, schema, field, _message(error)))
        with self._lock:
            if fresh:  # an invalid object is reported every time it is answered
                self.violations.extend(fresh)
            else:
                self._seen.add(digest)
        out.extend(fresh)

    def _check_updated(self, where: str, event: dict[str, Any], out: list[Violation]) -> None:
        """Stripe's `*.updated` events carry `data.previous_attributes`: the old values of the
        fields that changed (docs: "Object containing the names of the updated attributes and
        their values prior to the event")."""
        if not str(event.get("type", "")).endswith(".updated"):
            return
        data = event.get("data")
        previous = data.get("previous_attributes") if isinstance(data, dict) else None
        if not isinstance(previous, dict) or not previous:
            violation = Violation(
                where,
                "event",
                "data.previous_attributes",
                f"{event.get('type')} must carry the old values of the fields that changed",
            )
            out.append(violation)
            with self._lock:
                self.violations.append(violation)

    def _allowed(self, schema: str, field: str) -> bool:
        for (allowed_schema, allowed_field), _reason in ALLOWED.items():
            if allowed_schema == schema and (
                field == allowed_field or field.startswith(allowed_field + ".")
            ):
                with self._lock:
                    self.allowed_used.add((allowed_schema, allowed_field))
                return True
        return False

    # -- requests ----------------------------------------------------------------------------
    def _form_validator(self, schema: dict[str, Any]) -> Any:
        key = f"form:{id(schema)}"
        found = self._validators.get(key)
        if found is None:
            root = {"components": SPEC["components"], "allOf": [schema]}
            found = self._validators[key] = FormValidator(root)
        return found

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for route_method, template, pattern, operation in self._routes:
            if route_method == method.upper() and pattern.match(path):
                return template, operation
        return None

    def check_request(self, method: str, url: str, body: str | bytes | None) -> list[Violation]:
        parts = urlsplit(url)
        method = method.upper()
        found: list[Violation] = []
        matched = self.operation(method, parts.path)
        if matched is None:
            found.append(
                Violation(
                    f"gateway {method} {parts.path}",
                    f"{method} {parts.path}",
                    "(path)",
                    "no such operation in the pinned spec",
                )
            )
        else:
            template, operation = matched
            subject = f"{method} {template}"
            with self._lock:
                self.operations[subject] += 1
            params = decode_form(parts.query) if parts.query else {}
            if body:
                text = body.decode() if isinstance(body, bytes) else body
                params.update(decode_form(text))
            where = f"gateway {subject}"
            if method == "POST" and "requestBody" in operation:
                self._check_form(where, subject, operation["requestBody"], params, found)
            else:
                self._check_query(where, subject, operation, params, found)
        with self._lock:
            self.violations.extend(found)
        return found

    def _check_form(
        self, where: str, subject: str, schema: Any, params: Any, out: list[Violation]
    ) -> None:
        for error in self._form_validator(schema).iter_errors(params):
            out.append(Violation(where, subject, _field(error), _message(error)))

    def _check_query(
        self, where: str, subject: str, operation: Any, params: Any, out: list[Violation]
    ) -> None:
        declared = {p["name"]: p for p in operation["parameters"] if p.get("in") == "query"}
        for name, value in params.items():
            parameter = declared.get(name)
            if parameter is None:
                out.append(Violation(where, subject, name, "unknown parameter"))
                continue
            for error in self._form_validator(parameter.get("schema", {})).iter_errors(value):
                field = ".".join([name, *(str(p) for p in error.absolute_path)])
                out.append(Violation(where, subject, field, _message(error)))
        for name, parameter in declared.items():
            if parameter.get("required") and name not in params:
                out.append(Violation(where, subject, name, "required parameter missing"))

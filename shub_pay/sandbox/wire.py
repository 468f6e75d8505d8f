"""Stripe's request encoding: form-encoded bracket parameters, and typed reads of them.

The SDK sends `metadata[k]=v`, `expand[0]=x`, `line_items[0][price_data][currency]=usd`,
`created[gte]=…` and booleans as `true`/`false` (`stripe/_encode.py`). `decode_form` turns
that into nested dicts, and a dict whose keys are all integers into a list in index order.
The `Params` readers refuse values the way Stripe does (400 with the offending `param`), so a
handler never sees a malformed integer or an unknown top-level parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from .errors import ApiError, invalid, required, unknown_param

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, bracket, _rest = key.partition("[")
    if not bracket:
        return [key]
    return [head, *_KEY_PART.findall(key[len(head) :])]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def decode_form(raw: str) -> dict[str, Any]:
    """Decode `a[b][0]=x&a[b][1]=y` into `{"a": {"b": ["x", "y"]}}`."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = _split_key(key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid parameter: {key}", param=parts[0])
                node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


Str = str
Int = int
Bool = bool
List = list


class Params:
    """Read typed values from decoded parameters; remember which names were read."""

    def __init__(self, data: dict[Str, Any], prefix: Str = "") -> None:
        self.data = data
        self.prefix = prefix

    def _name(self, key: Str) -> Str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def allow(self, names: Iterable[Str]) -> None:
        allowed = set(names) | {"expand"}
        for key in self.data:
            if key not in allowed:
                raise unknown_param(self._name(key))

    def has(self, key: Str) -> Bool:
        return key in self.data and self.data[key] != ""

    def str(self, key: Str, *, default: Str | None = None, req: Bool = False) -> Str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if req:
                raise required(self._name(key))
            return default
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {self._name(key)}", param=self._name(key))
        return value

    def req_str(self, key: Str) -> Str:
        value = self.str(key, req=True)
        assert value is not None
        return value

    def int(self, key: Str, *, default: Int | None = None, req: Bool = False) -> Int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if req:
                raise required(self._name(key))
            return default
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise invalid(
                f"Invalid integer: {value}", param=self._name(key), code="parameter_invalid_integer"
            )
        return int(value)

    def bool(self, key: Str, *, default: Bool = False) -> Bool:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if value in ("true", "false"):
            return bool(value == "true")
        raise invalid(f"Invalid boolean: {value}", param=self._name(key))

    def enum(self, key: Str, choices: Iterable[Str], *, default: Str | None = None) -> Str | None:
        value = self.str(key, default=default)
        options = list(choices)
        if value is not None and value not in options:
            raise invalid(
                f"Invalid {self._name(key)}: must be one of {', '.join(options)}",
                param=self._name(key),
            )
        return value

    def sub(self, key: Str) -> Params:
        value = self.data.get(key)
        if value is None or value == "":
            return Params({}, self._name(key))
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {self._name(key)}", param=self._name(key))
        return Params(value, self._name(key))

    def list(self, key: Str) -> List[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {self._name(key)}", param=self._name(key))
        return value

    def metadata(self, key: Str = "metadata") -> dict[Str, Str] | None:
        """Stripe's metadata: ≤ 50 keys of ≤ 40 characters, values ≤ 500 characters."""
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {self._name(key)}", param=self._name(key))
        if len(value) > 50:
            raise invalid("Metadata can have at most 50 keys.", param=self._name(key))
        for meta_key, meta_value in value.items():
            name = f"{self._name(key)}[{meta_key}]"
            if len(meta_key) > 40:
                raise invalid("Metadata keys can be at most 40 characters.", param=name)
            if not isinstance(meta_value, str):
                raise invalid(f"Invalid string: {name}", param=name)
            if len(meta_value) > 500:
                raise invalid("Metadata values can be at most 500 characters.", param=name)
        return {k: v for k, v in value.items() if v != ""}


def merge_metadata(
    current: dict[str, str], update: dict[str, str] | None, raw: Any
) -> dict[str, str]:
    """Stripe merges metadata on update; an empty value unsets a key, `metadata=""` clears."""
    if update is None:
        return current
    if raw == "":
        return {}
    merged = dict(current)
    assert isinstance(raw, dict)
    for key, value in raw.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def expand_paths(data: dict[str, Any]) -> list[str]:
    value = data.get("expand")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("Invalid array: expand", param="expand")
    return value


def positive_int(value: int | None, name: str) -> None:
    if value is not None and value <= 0:
        raise ApiError(
            400,
            "This value must be greater than or equal to 1.",
            param=name,
            code="parameter_invalid_integer",
        )

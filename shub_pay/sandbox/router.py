"""Route tables: `(method, path template)` → handler, matched by compiled regex.

The template (`/v1/charges/{id}`) is also the key under which `/_sandbox/stats` counts requests,
so statistics never grow with the number of distinct ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass(frozen=True)
class Match:
    route: Route
    path_params: dict[str, str]


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str) -> Callable[[Handler], Handler]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, pattern, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> Match | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return Match(route, found.groupdict())
        return None

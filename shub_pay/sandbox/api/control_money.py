"""Control routes for money settings (DESIGN.md §10): fees, exchange rates, the payout schedule,
and a payout that bounces.

`POST` changes only the parameters it is given and answers the whole setting; `GET` reads it.
Percentages and rates are decimal strings (`2.9`, `0.0067`), amounts integers in minor units.
Settings apply to what happens next: booked transactions are never re-priced.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ..errors import invalid, missing
from ..expand import render
from ..payouts import FAILURE_MESSAGES, fail_payout
from ..schedule import INTERVALS, WEEKDAYS
from ..state import SandboxState
from ..wire import Params
from .context import CONTROL_ROUTES

Obj = dict[str, Any]
Answer = tuple[int, Obj]

_DECIMAL = re.compile(r"\d+(\.\d+)?")
_CURRENCY = re.compile(r"[a-z]{3}")


def _decimal(params: Params, name: str, *, high: Decimal | None = None) -> Decimal | None:
    raw = params.str(name)
    label = params._name(name)
    if raw is None:
        return None
    if not _DECIMAL.fullmatch(raw):
        raise invalid(f"{label} must be a decimal number like 2.9", param=label)
    value = Decimal(raw)
    if high is not None and value > high:
        raise invalid(f"{label} must be at most {high}", param=label)
    return value


def _non_negative(params: Params, name: str) -> int | None:
    value = params.int(name)
    if value is not None and value < 0:
        raise invalid(f"{params._name(name)} must not be negative", param=params._name(name))
    return value


def _currencies(params: Params, name: str) -> Params:
    table = params.sub(name)
    for code in table.data:
        if not _CURRENCY.fullmatch(code):
            raise invalid(
                f"{name}[{code}]: a currency is three lowercase letters", param=f"{name}[{code}]"
            )
    return table


def _fees(state: SandboxState) -> Obj:
    fees = state.fees
    return {
        "percent": str(fees.percent),
        "international_percent": str(fees.international_percent),
        "conversion_percent": str(fees.conversion_percent),
        "fixed": dict(sorted(fees.fixed.items())),
        "dispute_fee": fees.dispute_fee_usd,
        "dispute_fee_currency": "usd",
    }


@CONTROL_ROUTES.add("POST", "/_sandbox/fees")
def set_fees(state: SandboxState, params: Params) -> Answer:
    params.allow(("percent", "international_percent", "conversion_percent", "fixed", "dispute_fee"))
    fees = state.fees
    for name in ("percent", "international_percent", "conversion_percent"):
        value = _decimal(params, name, high=Decimal(100))
        if value is not None:
            setattr(fees, name, value)
    fixed = _currencies(params, "fixed")
    for code in fixed.data:
        amount = _non_negative(fixed, code)
        if amount is not None:
            fees.fixed[code] = amount
    dispute_fee = _non_negative(params, "dispute_fee")
    if dispute_fee is not None:
        fees.dispute_fee_usd = dispute_fee
    return 200, _fees(state)


@CONTROL_ROUTES.add("GET", "/_sandbox/fees")
def get_fees(state: SandboxState, params: Params) -> Answer:
    return 200, _fees(state)


def _rates(state: SandboxState) -> Obj:
    table = state.rates.usd_per_unit
    return {"base": "usd", "rates": {code: str(table[code]) for code in sorted(table)}}


@CONTROL_ROUTES.add("POST", "/_sandbox/fx")
def set_rates(state: SandboxState, params: Params) -> Answer:
    params.allow(("rates",))
    table = _currencies(params, "rates")
    if not table.data:
        raise invalid(
            "Give rates as rates[<currency>]=<USD per one unit>, e.g. rates[eur]=1.08",
            param="rates",
        )
    changes = {}
    for code in table.data:
        value = _decimal(table, code)
        if value is None or value <= 0:
            raise invalid(f"rates[{code}] must be a positive decimal", param=f"rates[{code}]")
        if code == "usd" and value != 1:
            raise invalid("rates[usd] is the base of the table and stays 1", param="rates[usd]")
        changes[code] = value
    state.rates.usd_per_unit.update(changes)
    return 200, _rates(state)


@CONTROL_ROUTES.add("GET", "/_sandbox/fx")
def get_rates(state: SandboxState, params: Params) -> Answer:
    return 200, _rates(state)


def _schedule(state: SandboxState) -> Obj:
    clock = state.payout_clock
    return {**clock.schedule.as_dict(), "next_run": clock.run_at}


@CONTROL_ROUTES.add("POST", "/_sandbox/payouts")
def set_payout_schedule(state: SandboxState, params: Params) -> Answer:
    params.allow(("interval", "delay_days", "weekly_anchor", "monthly_anchor"))
    schedule = state.payout_clock.schedule
    interval = params.enum("interval", INTERVALS)
    anchor = params.enum("weekly_anchor", WEEKDAYS)
    delay_days = _non_negative(params, "delay_days")
    monthly = params.int("monthly_anchor")
    if delay_days is not None and delay_days > 30:
        raise invalid("delay_days must be between 0 and 30", param="delay_days")
    if monthly is not None and not 1 <= monthly <= 31:
        raise invalid("monthly_anchor must be between 1 and 31", param="monthly_anchor")
    if interval is not None:
        schedule.interval = interval
    if anchor is not None:
        schedule.weekly_anchor = anchor
    if delay_days is not None:
        schedule.delay_days = delay_days
    if monthly is not None:
        schedule.monthly_anchor = monthly
    state.payout_clock.anchor(state.clock.now())
    return 200, _schedule(state)


@CONTROL_ROUTES.add("GET", "/_sandbox/payouts")
def get_payout_schedule(state: SandboxState, params: Params) -> Answer:
    return 200, _schedule(state)


@CONTROL_ROUTES.add("POST", "/_sandbox/payouts/{payout_id}/fail")
def fail(state: SandboxState, params: Params, payout_id: str) -> Answer:
    params.allow(("failure_code",))
    payout = state.store.get_any_scope(payout_id)
    if payout is None or payout["object"] != "payout":
        raise missing("payout", payout_id, param="payout")
    code = params.enum("failure_code", FAILURE_MESSAGES, default="account_closed")
    assert code is not None
    return 200, render(state, fail_payout(state, payout, code), [])

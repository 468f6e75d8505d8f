"""Inputs people and attackers give that used to end as "internal error" (exit 70): each now
gets its exit code (2 usage, 3 environment, 5 conflict) and one line saying what is wrong."""

from __future__ import annotations

import copy
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CATALOG, Cli


def _one_line_error(result: Any, code: int) -> str:
    output = result.stdout + result.stderr
    assert result.exit_code == code, output
    assert "internal error" not in output and "Traceback" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_unreadable_catalog_files_are_usage_errors(sqlite_cli: Cli, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"users": [{"name": "Zoë"}]}'.encode("latin-1"))
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    for path, words in (
        (latin1, "not UTF-8"),
        (nested, "nested too deeply"),
        (tmp_path, "is a directory"),
    ):
        line = _one_line_error(sqlite_cli("catalog", "import", str(path)), 2)
        assert words in line, line
    assert sqlite_cli.json("catalog", "list") == []


@pytest.mark.parametrize(
    "price",
    [
        {"id": "p_huge", "currency": "usd", "amount_minor": 10**20},
        {"id": "p_huge", "currency": "usd", "amount": "1000000.00"},
        {"id": "p_huge", "currency": "jpy", "amount_minor": 100_000_000},
    ],
)
def test_a_price_above_stripes_maximum_is_refused_at_import(
    cli: Cli, catalog_data: Any, tmp_path: Path, price: dict[str, Any]
) -> None:
    data = copy.deepcopy(catalog_data)
    data["products"][0]["prices"] = [price]
    line = _one_line_error(cli("catalog", "import", str(_write(tmp_path, "c.json", data))), 2)
    assert "above Stripe's maximum of 99999999" in line
    assert cli.json("catalog", "list") == []


def test_a_slug_of_another_product_is_named_not_an_integrity_error(
    cli: Cli, catalog_data: Any, tmp_path: Path
) -> None:
    assert cli("catalog", "import", str(CATALOG)).exit_code == 0
    data = copy.deepcopy(catalog_data)
    taken = data["products"][1]["slug"]
    data["products"][0]["slug"] = taken
    data["products"] = [data["products"][0]]
    data["products"][0]["id"] = "p_newcomer"
    line = _one_line_error(cli("catalog", "import", str(_write(tmp_path, "c.json", data))), 2)
    assert f"slug {taken} already belongs to product" in line
    assert "INSERT" not in line and "UPDATE" not in line


def test_a_thirty_digit_order_is_not_found(cli: Cli) -> None:
    for command in (("orders", "show"), ("refunds", "list", "--order")):
        line = _one_line_error(cli(*command, "1" * 30), 2)
        assert "no order" in line


def test_output_into_a_missing_directory_a_full_disk_or_onto_a_symlink(
    sqlite_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no" / "such" / "revenue.csv"
    line = _one_line_error(sqlite_cli("report", "revenue", "--output", str(missing)), 2)
    assert "no directory" in line and not missing.parent.exists()

    secret = tmp_path / "keep.txt"
    secret.write_text("not a report")
    link = tmp_path / "link.csv"
    link.symlink_to(secret)
    line = _one_line_error(sqlite_cli("report", "revenue", "--output", str(link), "--force"), 5)
    assert "not a regular file" in line
    assert link.is_symlink() and secret.read_text() == "not a report"

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    target = tmp_path / "revenue.csv"
    line = _one_line_error(sqlite_cli("report", "revenue", "--output", str(target)), 3)
    assert "No space left on device" in line
    assert not target.exists() and not list(tmp_path.glob(".revenue.csv.*"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_device_is_one_error_line_even_as_json(
    sqlite_cli: Cli, sqlite_url: str
) -> None:
    assert sqlite_cli("catalog", "import", str(CATALOG)).exit_code == 0
    for fmt in ("json", "table", "csv"):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "shub_pay",
                    "--database-url",
                    sqlite_url,
                    "catalog",
                    "list",
                    "--format",
                    fmt,
                ],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        assert done.returncode == 3, (fmt, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert done.stderr.count("error:") == 1, done.stderr
        assert "cannot write the output" in done.stderr

"""Support copies ids out of tables: piped, a table is plain tab-separated lines with every id
whole (as `gh` prints); at an 80-column terminal ids, emails and amounts are never cut — a
wordy column wraps or is left out, and a note says so."""

from __future__ import annotations

from rich.cells import cell_len

from tests.conftest import Cli
from tests.orders.conftest import Market
from tests.support.terminal import run_in_terminal

BOX = set("─│┃━┏┓┗┛┡┩└┘┌┐├┤┼╭╮╰╯")


def _sold_and_refunded(support: Cli, market: Market) -> tuple[str, str, str]:
    number = market.buy("p_aurora", "b_mia")
    result = support("refunds", "issue", number, "--amount", "2.00", "--yes", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (refund,) = market.refunds(number)
    assert refund.stripe_refund_id is not None
    buyer = support.json("orders", "show", number)["buyer_email"]
    return number, refund.stripe_refund_id, buyer


def test_piped_tables_are_tab_separated_lines_with_every_id_whole(
    support: Cli, market: Market
) -> None:
    number, refund_id, buyer = _sold_and_refunded(support, market)
    for command in (("refunds", "list"), ("orders", "list"), ("catalog", "list")):
        result = support(*command)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert not BOX & set(result.stdout), command
        assert "…" not in result.stdout
        widths = {line.count("\t") for line in lines}
        assert len(widths) == 1 and widths != {0}, (command, lines)
    refunds = [line.split("\t") for line in support("refunds", "list").stdout.splitlines()]
    header, (row,) = refunds[0], refunds[1:]
    assert dict(zip(header, row, strict=True))["refund"] == refund_id
    orders = [line.split("\t") for line in support("orders", "list").stdout.splitlines()]
    order = dict(zip(orders[0], orders[1], strict=True))
    assert (order["order"], order["buyer"], order["amount"]) == (number, buyer, "$12.99")
    slugs = [line.split("\t")[0] for line in support("catalog", "list").stdout.splitlines()[1:]]
    assert "aurora-borealis-mega-tree" in slugs


def test_at_80_columns_ids_emails_and_amounts_are_never_cut(
    support: Cli, market: Market, db_url: str
) -> None:
    number, refund_id, buyer = _sold_and_refunded(support, market)
    for command, whole in (
        (("refunds", "list"), (refund_id, number, "$2.00")),
        (("orders", "list"), (number, buyer, "$12.99")),
        (("catalog", "list"), ("aurora-borealis-mega-tree", "winter-wonderland-arches")),
        (("creators", "list"), ("ada@lumen-lights.example",)),
    ):
        screen = run_in_terminal("--database-url", db_url, *command, columns=80)
        assert screen.exit_code == 0, screen.text
        assert "…" not in screen.text, screen.text
        assert all(cell_len(line) <= 80 for line in screen.lines), screen.text
        for value in whole:
            assert any(value in line for line in screen.lines), (value, screen.text)

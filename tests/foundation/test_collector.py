"""`collector.long_run`: a long run's collector settings last as long as the run, no longer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shub_pay.collector import long_run


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_a_run_freezes_what_exists_raises_the_young_threshold_and_restores_both() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    with long_run(young_threshold=50_000):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (50_000, *before[1:])
        cycle: list[object] = []
        cycle.append(cycle)  # the run's own garbage is still collectable
        del cycle
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_an_error_inside_the_run_restores_the_collector_too() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), long_run(young_threshold=50_000):
        raise RuntimeError("the run failed")
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)


def test_a_caller_that_froze_objects_itself_keeps_them_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The freeze count itself drifts as frozen objects are freed: watch what the run calls.
    gc.freeze()
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    with long_run():
        pass
    assert calls == []


def test_a_lower_threshold_is_never_imposed() -> None:
    gc.set_threshold(100_000, 10, 10)
    with long_run(young_threshold=50_000):
        assert gc.get_threshold() == (100_000, 10, 10)
    assert gc.get_threshold() == (100_000, 10, 10)

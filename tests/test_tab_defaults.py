"""The defaults that size a worker by its tabs (issue #15): tabs per browser from the cores,
the dispatcher's batches, a batch's threads, and browser recycling counted per tab."""

from __future__ import annotations

import dataclasses

from engines.selenium.engine import SeleniumEngine
from screenshots.core.settings import MAX_DEFAULT_TABS, default_tabs, load_settings
from screenshots.delivery.distributed import default_batch_size
from tasks.capture import _threads


def test_a_browser_gets_two_tabs_more_than_the_cores_up_to_the_cap() -> None:
    assert [default_tabs(cpus) for cpus in (1, 2, 4, 6, 64)] == [3, 4, 6, 8, MAX_DEFAULT_TABS]
    assert load_settings({}).tabs == default_tabs()
    assert load_settings({"SCREENSHOT_TABS": "3"}).tabs == 3


def test_batches_hold_two_shots_per_tab_and_run_on_half_as_many_threads_again() -> None:
    assert default_batch_size(load_settings({"SCREENSHOT_TABS": "4"})) == 8
    assert default_batch_size(load_settings({"SCREENSHOT_TABS": "1"})) == 1
    assert [_threads(n) for n in (1, 2, 4)] == [1, 3, 6]


def test_recycling_counts_captures_per_tab_unless_given() -> None:
    settings = dataclasses.replace(load_settings({}), recycle_after=200)
    engines = [SeleniumEngine(settings, tabs=4), SeleniumEngine(settings, 10, tabs=4)]
    try:
        assert [engine.recycle_after for engine in engines] == [800, 10]
    finally:
        for engine in engines:
            engine.close()

"""A job compared with an earlier job of the same key (``compare`` on ``POST /v1/jobs``).

Each new ``ok`` row is compared with the earlier job's row of the same (normalised) URL by
:class:`screenshots.batch.compare.Comparer`, as ``screenshots-compare`` compares two runs: the
row gets ``change`` (``new``, ``unchanged``, ``changed``), ``changed_pct`` and ``diff_link``
(the diff image stored beside the new image). The URL's own ``ignore`` and ``changed_above``
options apply. The callback lists the rows whose change is above their ``changed_above``
(:func:`changes_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from screenshots.batch.compare import CHANGED, Comparer, Earlier, Rules, image_key, rules_of
from screenshots.core.result import Result
from screenshots.core.shot import Shot
from screenshots.storage.base import Storage


class JobComparison:
    """Compares rows of a job with the rows of an earlier one, in the same storage."""

    def __init__(
        self, storage: Storage, earlier: Iterable[Result], items: Iterable[Shot | Result]
    ) -> None:
        self.before: dict[str, Earlier] = {}
        for row in earlier:
            if row.ok and row.url not in self.before:
                self.before[row.url] = Earlier(
                    row.line, image_key(row), row.link, row.ignored_regions
                )
        self.rules = {
            item.line: rules_of(item.options) for item in items if isinstance(item, Shot)
        }
        self.comparer = Comparer(storage, storage, self.rules_for)

    def rules_for(self, row: Result) -> Rules:
        return self.rules.get(row.line) or Rules()

    def compare(self, row: Result) -> Result:
        """``row`` with its change columns filled (blocking: run it in a thread)."""
        return self.comparer.compare(row, self.before.get(row.url))


def changes_of(rows: Iterable[Result]) -> list[dict[str, Any]]:
    """The callback's ``changes``: the rows changed above their threshold, in line order."""
    return [
        {
            "url": row.url, "change": row.change, "changed_pct": row.changed_pct,
            "diff_link": row.diff_link,
        }
        for row in sorted(rows, key=lambda row: row.line)
        if row.change == CHANGED
    ]

"""Finished rows of a job, kept in Redis per input line until the dispatcher has them.

A worker records each URL's row here the moment it is finished, not only when its whole
batch is. So when a batch runs again (its worker died midway, or a restarted dispatcher
published it again, perhaps cut into different batches) the URLs already done are not shot
again, and a restarted dispatcher collects rows that were finished while it was away. The
dispatcher deletes rows once they are in its manifest, so the hash only ever holds what is
in flight.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: Seconds an untouched job's rows are kept (a dispatcher gone for good): 7 days.
ROWS_TTL = 7 * 24 * 3600


def rows_key(job_id: str) -> str:
    return f"screenshots:job:{job_id}:rows"


class RowStore:
    """The rows of job ``job_id`` in the Redis at ``client`` (a redis-py client)."""

    def __init__(self, client: Any, job_id: str) -> None:
        self.client = client
        self.key = rows_key(job_id)

    def get_many(self, lines: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The rows recorded for ``lines`` (missing lines are left out)."""
        wanted = list(lines)
        if not wanted:
            return {}
        found: dict[int, dict[str, Any]] = {}
        for line, raw in zip(wanted, self.client.hmget(self.key, wanted), strict=True):
            if raw is None:
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            if isinstance(row, dict):
                found[line] = row
        return found

    def put(self, line: int, row: dict[str, Any]) -> None:
        self.put_many({line: row})

    def put_many(self, rows: dict[int, dict[str, Any]]) -> None:
        """Record several rows in one round trip."""
        if not rows:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, mapping={str(line): json.dumps(row) for line, row in rows.items()})
        pipe.expire(self.key, ROWS_TTL)
        pipe.execute()

    def delete(self, lines: Iterable[int]) -> None:
        fields = [str(line) for line in lines]
        if fields:
            self.client.hdel(self.key, *fields)

"""Look-alike groups: screenshots whose perceptual hashes are at most ``distance`` bits apart
are one group, shown by one representative.

Not quadratic: multi-index hashing. The 64-bit hash is cut into ``distance + 1`` chunks; two
hashes within ``distance`` bits agree exactly on at least one chunk (pigeonhole), so only
hashes that share a chunk value are compared. Per chunk, the distinct hashes are sorted by
that chunk and each is compared (vectorised, ``numpy.bitwise_count``) with the following ones
of the same chunk value. A BK-tree was the other candidate: its queries prune on the triangle
inequality, which barely prunes when hashes sit about 32 bits apart as unrelated screenshots
do, and it walks Python objects node by node; multi-index hashing does one sort per chunk.
The cost is the pairs within a chunk's buckets: about n²/2^(64/(distance+1)) per chunk, so it
grows quickly with ``distance``; it is bounded by comparing each hash with at most
:data:`MAX_SCAN` following ones of its bucket (sorted by the whole hash, so a cluster of
near-duplicates lies together and is still linked, as a chain). Exact while no bucket holds
more than :data:`MAX_SCAN` distinct hashes (random hashes at 1M rows and distance 4: about
120 a bucket, so a rare far pair may be missed); measured by ``python -m
screenshots.dev.bench.visual``.

Groups are the connected components of "within ``distance``" (scipy's
``connected_components``), so a chain of small steps is one group; the representative is the
group's most frequent hash (the first row with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

from screenshots.visual.hashing import HASH_BITS

#: Bits two hashes may differ by and still look alike.
DEFAULT_DISTANCE = 4
#: Largest ``distance`` accepted (beyond it chunks are too short to index anything).
MAX_DISTANCE = 10
#: Neighbours in sorted order compared within one chunk bucket, at most (see the module
#: docstring): 1M rows of near-duplicate clusters (distance 4) took 47 s with 1024, 23 s with
#: 64 (every cluster found), 11 s with 16 (17 of 1,000 clusters split in two).
MAX_SCAN = 64


@dataclass(frozen=True)
class Groups:
    """Each row's group. Rows without a hash have group ``-1``."""

    #: Per row: its group's representative row (an index into the rows), or -1.
    representative: np.ndarray
    #: Per row: how many rows its group has (0 for rows without a hash).
    size: np.ndarray

    @property
    def count(self) -> int:
        """Number of groups."""
        return int(np.unique(self.representative[self.representative >= 0]).size)


def hashes_array(hashes: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """The hashes as uint64 and a mask of the rows that have one."""
    values = np.zeros(len(hashes), dtype=np.uint64)
    present = np.zeros(len(hashes), dtype=bool)
    for i, text in enumerate(hashes):
        if text:
            try:
                values[i] = int(text, 16)
            except ValueError:
                continue
            present[i] = True
    return values, present


def _chunks(distance: int) -> list[tuple[int, int]]:
    """(shift, bits) of the ``distance + 1`` chunks of a hash."""
    count = distance + 1
    bits = [HASH_BITS // count + (1 if i < HASH_BITS % count else 0) for i in range(count)]
    chunks, shift = [], 0
    for width in bits:
        chunks.append((shift, width))
        shift += width
    return chunks


def close_pairs(distinct: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of ``distinct`` (unique uint64 hashes) at most ``distance`` apart."""
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for shift, width in _chunks(distance):
        key = (distinct >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.lexsort((distinct, key))
        sorted_key = key[order]
        sorted_hash = distinct[order]
        active = np.arange(sorted_key.size - 1)
        for step in range(1, MAX_SCAN + 1):
            active = active[active + step < sorted_key.size]
            active = active[sorted_key[active] == sorted_key[active + step]]
            if active.size == 0:
                break
            bits = np.bitwise_count(sorted_hash[active] ^ sorted_hash[active + step])
            near = active[bits <= distance]
            left.append(order[near])
            right.append(order[near + step])
    if not left:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(left), np.concatenate(right)


def group_hashes(values: np.ndarray, present: np.ndarray, distance: int) -> Groups:
    """The look-alike groups of rows with hashes ``values`` (where ``present``)."""
    if not 0 <= distance <= MAX_DISTANCE:
        raise ValueError(f"distance must be 0 to {MAX_DISTANCE} bits")
    rows = np.flatnonzero(present)
    representative = np.full(values.size, -1, dtype=np.int64)
    size = np.zeros(values.size, dtype=np.int64)
    if rows.size == 0:
        return Groups(representative, size)
    distinct, first, inverse, counts = np.unique(
        values[rows], return_index=True, return_inverse=True, return_counts=True
    )
    i, j = close_pairs(distinct, distance)
    graph = coo_matrix(
        (np.ones(i.size, dtype=np.int8), (i, j)), shape=(distinct.size, distinct.size)
    )
    _, label = connected_components(graph, directed=False)
    # The representative of a component: its most frequent hash, then the earliest row.
    order = np.lexsort((first, -counts, label))
    leader_of_label = np.empty(label.max() + 1, dtype=np.int64)
    leader_of_label[label[order[::-1]]] = order[::-1]  # the first in order wins
    leader_row = rows[first[leader_of_label[label]]]
    group_size = np.bincount(label, weights=counts).astype(np.int64)
    representative[rows] = leader_row[inverse]
    size[rows] = group_size[label[inverse]]
    return Groups(representative, size)


def group_rows(hashes: Sequence[str | None], distance: int = DEFAULT_DISTANCE) -> Groups:
    """The look-alike groups of rows whose ``phash`` column is ``hashes``."""
    values, present = hashes_array(hashes)
    return group_hashes(values, present, distance)

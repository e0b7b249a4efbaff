"""Verification of the audit chains: pure functions over stored rows and exported checkpoints.

Each replica's entries are read in sequence order. For every entry:

- a gap in the sequence numbers                        → `deleted`
- its previous hash is not its predecessor's hash:
    - it names the same predecessor as the entry before → that entry was `inserted`
    - it names an entry nearby                          → `reordered`
    - otherwise (its predecessor is nowhere)            → `deleted` (and the rest renumbered)
- its recomputed hash differs, or its indexed columns disagree with its hashed body → `modified`

Then against the signed checkpoints exported for that replica: a checkpoint beyond the last stored
entry → `truncated`; a checkpoint whose hash differs from the stored entry → `rewritten` (the chain
was re-hashed after an edit); a checkpoint that fails its signature → `checkpoint`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from gateway.errors import IntegrityError

from .checkpoint import Checkpoint
from .record import chain_hash, genesis_hash

__all__ = ["ChainRow", "ChainSummary", "Problem", "VerifyReport", "check_chain", "check_checkpoints"]


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored entry, as read back for verification."""

    replica: str
    seq: int
    kind: str
    event_id: str
    ts: float
    production: str
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One integrity failure, naming the entry where it shows."""

    kind: str
    """`modified` `deleted` `inserted` `reordered` `truncated` `rewritten` `checkpoint` `orphan` `capture`."""
    replica: str
    seq: int | None
    event_id: str
    message: str
    ts: float | None = None

    def __str__(self) -> str:
        where = f"replica {self.replica}" + (f" seq {self.seq}" if self.seq is not None else "")
        name = self.event_id or "(unknown event)"
        return f"{self.kind}: {name} ({where}): {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What `verify()` found."""

    entries: int
    replicas: tuple[str, ...]
    checkpoints: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    unanchored: tuple[tuple[str, int], ...] = ()
    """(replica, entries after its last signed checkpoint): intact as far as the chain shows, but a
    forger with database access could have rewritten them. Normal for the newest few seconds."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first problem: earliest in its replica's chain; across replicas, the earliest in time."""
        if not self.problems:
            return None
        firsts: dict[str, Problem] = {}
        for problem in self.problems:
            held = firsts.get(problem.replica)
            if held is None or _position(problem) < _position(held):
                firsts[problem.replica] = problem
        return min(firsts.values(), key=lambda p: (p.ts if p.ts is not None else float("inf"), p.replica))

    def raise_for_problems(self) -> None:
        """Raise IntegrityError naming the first bad event, if any problem was found."""
        if self.first is not None:
            raise IntegrityError(f"audit trail altered: {self.first}", self.problems)


def _position(problem: Problem) -> int:
    return problem.seq if problem.seq is not None else 1 << 62


@dataclass(slots=True)
class ChainSummary:
    """What a chain scan learnt, for the checkpoint comparison."""

    last_seq: int = 0
    last_event_id: str = ""
    last_ts: float | None = None
    count: int = 0
    hashes: dict[int, tuple[str, str, float]] = field(default_factory=dict)
    """seq → (hash, event id, ts) at the sequence numbers the checkpoints need."""


def check_chain(
    replica: str, pages: Iterable[list[ChainRow]], wanted: frozenset[int] = frozenset()
) -> tuple[list[Problem], ChainSummary]:
    """Check one replica's chain, read as pages in sequence order; remember the hashes at `wanted` seqs."""
    problems: list[Problem] = []
    summary = ChainSummary()
    last_hash = genesis_hash(replica)
    previous: ChainRow | None = None
    reported: set[int] = set()
    for page, nearby in _with_neighbours(pages):
        for row in page:
            found = _check_row(row, summary.last_seq + 1, last_hash, previous, nearby)
            for problem in found:
                if problem.seq not in reported:
                    problems.append(problem)
                    reported.add(problem.seq if problem.seq is not None else -1)
            if row.seq in wanted:
                summary.hashes[row.seq] = (row.hash, row.event_id, row.ts)
            summary.last_seq, summary.last_event_id, summary.last_ts = row.seq, row.event_id, row.ts
            summary.count += 1
            last_hash, previous = row.hash, row
    problems.sort(key=lambda p: p.seq if p.seq is not None else -1)
    return problems, summary


def _with_neighbours(pages: Iterable[list[ChainRow]]) -> Iterator[tuple[list[ChainRow], set[str]]]:
    """Each page with the hashes of itself and the pages either side (to recognise a reorder)."""
    before: list[ChainRow] = []
    iterator = iter(pages)
    current = next(iterator, None)
    while current is not None:
        after = next(iterator, None)
        nearby = {r.hash for r in before} | {r.hash for r in current} | {r.hash for r in after or ()}
        yield current, nearby
        before, current = current, after


def _check_row(
    row: ChainRow, expected_seq: int, last_hash: str, previous: ChainRow | None, nearby: set[str]
) -> list[Problem]:
    def problem(kind: str, message: str, at: ChainRow = row) -> Problem:
        return Problem(kind, at.replica, at.seq, at.event_id, message, at.ts)

    if row.seq > expected_seq:
        missing = f"seq {expected_seq}" if row.seq == expected_seq + 1 else f"seqs {expected_seq}..{row.seq - 1}"
        return [
            Problem(
                "deleted",
                row.replica,
                expected_seq,
                "",
                f"{missing} missing (deleted) before {row.event_id} (seq {row.seq})",
                row.ts,
            )
        ]
    if row.prev_hash != last_hash:
        if previous is not None and row.prev_hash == previous.prev_hash:
            return [problem("inserted", "this entry was inserted: the next entry chains to its predecessor", previous)]
        if row.prev_hash in nearby:
            return [problem("reordered", "entry is out of order: it chains to a different predecessor")]
        return [
            problem(
                "deleted",
                "the entry this one chains to is missing (deleted, later entries renumbered) or this entry is foreign",
            )
        ]
    if chain_hash(row.replica, row.seq, row.kind, row.prev_hash, row.body.encode()) != row.hash:
        return [problem("modified", "entry content does not match its hash (altered after it was written)")]
    if mismatch := _column_mismatch(row):
        return [problem("modified", f"indexed column {mismatch} disagrees with the hashed entry")]
    return []


def _column_mismatch(row: ChainRow) -> str:
    try:
        body = json.loads(row.body)
    except ValueError:
        return "body"
    expected: Mapping[str, object] = {
        "kind": body.get("type"),
        "event_id": body.get("id") if row.kind == "event" else body.get("event_id"),
        "ts": body.get("ts"),
        "production": body.get("production"),
    }
    actual = {"kind": row.kind, "event_id": row.event_id, "ts": row.ts, "production": row.production}
    return next((name for name, value in expected.items() if actual[name] != value), "")


def check_checkpoints(replica: str, checkpoints: Iterable[Checkpoint], summary: ChainSummary) -> list[Problem]:
    """Compare a replica's signed checkpoints with what the chain scan found."""
    problems: list[Problem] = []
    previous_good = 0
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq > summary.last_seq:
            problems.append(
                Problem(
                    "truncated",
                    replica,
                    summary.last_seq + 1,
                    cp.event_id if cp.seq == summary.last_seq + 1 else "",
                    f"the store ends at seq {summary.last_seq} ({summary.last_event_id or 'no entries'}) "
                    f"but a signed checkpoint covers seq {cp.seq} ({cp.event_id}): the end was removed",
                    summary.last_ts,
                )
            )
            break
        stored = summary.hashes.get(cp.seq)
        if stored is None:
            continue  # that entry is missing; the chain scan reported the deletion
        if stored[0] != cp.hash or stored[1] != cp.event_id:
            problems.append(
                Problem(
                    "rewritten",
                    replica,
                    cp.seq,
                    stored[1],
                    f"differs from the signed checkpoint at seq {cp.seq} ({cp.event_id}): chain re-hashed "
                    f"after an edit somewhere in seqs {previous_good + 1}..{cp.seq}",
                    stored[2],
                )
            )
        else:
            previous_good = cp.seq
    return problems

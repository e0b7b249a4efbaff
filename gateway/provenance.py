"""The output ledger: what every AI output looked like (fingerprints only), and finding it again.

    ledger = OutputLedger(store.db)                      # the audit store's database (table output_ledger)
    ledger.record(event_id=..., index=0, production=..., user=..., tool=..., ts=..., fingerprint=fp)
    ledger.match_sha256(digest) / match_image(pdq_hashes) / match_audio(audio_fp) -> [OutputMatch]
    view = ledger.view(production)                       # one snapshot for many lookups (a scan)
    view.match(fingerprint_file(path)) -> [OutputMatch]  # exact, else near: image, frames, audio

A row holds the event id, production, user, tool, time, kind, media type, size, SHA-256 and the
perceptual hashes (gateway.fingerprint): never the output's bytes, nor anything they can be
rebuilt from. The table comes with the audit schema (migration v2), so it lives wherever the audit
store does (SQLite in the data dir, or PostgreSQL) and shares its backups and retention.

Matching, best match per recorded output:

    exact   the same SHA-256
    near    PDQ: any of the query's eight dihedral variants within `PDQ_THRESHOLD` (31) bits of any
            recorded hash (whole image, centre crops 90–60 %, edge/corner crops 90 and 80 %, video
            frames), both hashes of quality ≥ 50; audio: bit error rate ≤ `AUDIO_THRESHOLD` (0.30)
            at the best alignment; and, only when none of those matched a still image, ORB local
            features: ≥ `FEATURE_INLIERS` (40) RANSAC homography inliers (crops off the grid,
            small rotations, screenshots). Measured robustness and impostor distances: docs/outputs.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gateway.audit.schema import Database, migrate
from gateway.audit.store import open_database
from gateway.config.models import AuditSettings
from gateway.fingerprint import AudioFingerprint, ImageHash, LocalFeatures, OutputFingerprint, audio_distance

__all__ = [
    "AUDIO_THRESHOLD",
    "FEATURE_INLIERS",
    "MIN_QUALITY",
    "PDQ_THRESHOLD",
    "LedgerView",
    "OutputLedger",
    "OutputMatch",
    "OutputRecord",
]

PDQ_THRESHOLD = 31
"""bits of 256: PDQ's published match radius; the closest distinct image measured was 88 bits."""
AUDIO_THRESHOLD = 0.30
"""bit error rate: re-encoded copies measured ≤ 0.15, unrelated audio ≥ 0.42."""
FEATURE_INLIERS = 40
"""RANSAC homography inliers for a local-feature match (media-matching.md: unrelated photos ≤ 7, look-alike
synthetic posters ≤ 35)."""
MIN_QUALITY = 50
"""PDQ quality below which a hash is too flat to near-match (it still matches exactly by SHA-256)."""

_HASH_BYTES = 32
_CHUNK = 65_536
_COLUMNS = "event_id, idx, production, username, tool, ts, kind, location, media_type, size, sha256"
_INSERT = (
    "INSERT INTO output_ledger (" + _COLUMNS + ", pdq, variants, audio, features) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ALL = (
    "SELECT event_id, idx, production, username, tool, ts, kind, location, media_type, size, sha256, "
    "pdq, variants, audio, features FROM output_ledger "
)
_SELECT_HASHES = (
    "SELECT event_id, idx, production, username, tool, ts, kind, location, media_type, size, sha256, "
    "pdq, variants, audio, NULL FROM output_ledger "
)
_SELECT_SHA = (
    "SELECT event_id, idx, production, username, tool, ts, kind, location, media_type, size, sha256 "
    "FROM output_ledger WHERE sha256 = ? "
)
_ORDER = " ORDER BY ts, event_id, idx"

MatchKind = Literal["exact", "near"]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One recorded output: who generated it, where, when, what it was (no content)."""

    event_id: str
    index: int
    production: str
    user: str
    tool: str
    ts: float
    kind: str
    location: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class OutputMatch:
    """A query that matches a recorded output, and how closely."""

    record: OutputRecord
    match: MatchKind
    measure: Literal["sha256", "pdq", "features", "audio"]
    distance: float
    """0 for sha256; Hamming bits for pdq; bit error rate for audio; homography inliers for features
    (there, more is closer)."""
    detail: str = ""
    """which hashes met (`crop 90% ~ flip`), or where the audio lines up."""

    def as_dict(self) -> dict[str, object]:
        record = self.record
        return {
            "event_id": record.event_id,
            "output_index": record.index,
            "production": record.production,
            "user": record.user,
            "tool": record.tool,
            "ts": record.ts,
            "kind": record.kind,
            "media_type": record.media_type,
            "match": self.match,
            "measure": self.measure,
            "distance": self.distance,
            "detail": self.detail,
        }


class OutputLedger:
    """Fingerprints of generated outputs in the audit database. Thread-safe (the database is)."""

    def __init__(self, db: Database, *, owns_db: bool = False) -> None:
        self.db = db
        self._owns_db = owns_db
        migrate(db)

    @classmethod
    def open(cls, data_dir: str | Path, settings: AuditSettings | None = None) -> OutputLedger:
        """The ledger of a gateway data dir (SQLite there, or the configured PostgreSQL); close() it."""
        db = open_database(data_dir, settings)
        try:
            return cls(db, owns_db=True)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> OutputLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        *,
        event_id: str,
        index: int,
        production: str,
        user: str,
        tool: str,
        ts: float,
        fingerprint: OutputFingerprint,
        location: str = "",
    ) -> OutputRecord:
        """Store one output's fingerprints under its event; (event_id, index) is unique."""
        record = OutputRecord(
            event_id, index, production, user, tool, ts, fingerprint.kind, location, fingerprint.media_type,
            fingerprint.size, fingerprint.sha256,
        )  # fmt: skip
        pdq = b"".join(h.bits + bytes([max(0, min(100, h.quality))]) for h in fingerprint.images)
        variants = json.dumps([h.variant for h in fingerprint.images], separators=(",", ":"))
        audio = fingerprint.audio.to_bytes() if fingerprint.audio is not None else None
        features = fingerprint.features[0].to_bytes() if fingerprint.features else None
        with self.db.transaction() as session:
            session.execute(_INSERT, (*_row(record), pdq or None, variants, audio, features))
        return record

    def view(self, production: str | None = None, *, features: bool = True) -> LedgerView:
        """A snapshot of the ledger (one production, or all) loaded for matching.

        ORB features are ~40 KB per image output; `features=False` leaves them (and stage 2) out.
        """
        select = _SELECT_ALL if features else _SELECT_HASHES
        with self.db.transaction(write=False) as session:
            if production:
                rows = session.fetchall(select + "WHERE production = ?" + _ORDER, (production,))
            else:
                rows = session.fetchall(select + _ORDER)
        return LedgerView(rows)

    def match_sha256(self, sha256: str, production: str | None = None) -> list[OutputMatch]:
        """Outputs with exactly these bytes."""
        with self.db.transaction(write=False) as session:
            if production:
                rows = session.fetchall(_SELECT_SHA + "AND production = ?" + _ORDER, (sha256.lower(), production))
            else:
                rows = session.fetchall(_SELECT_SHA + _ORDER, (sha256.lower(),))
        return [OutputMatch(_record(r), "exact", "sha256", 0.0, "same bytes") for r in rows]

    def match_image(
        self, pdq: bytes | ImageHash | Sequence[bytes | ImageHash], threshold: int = PDQ_THRESHOLD,
        production: str | None = None,
    ) -> list[OutputMatch]:  # fmt: skip
        """Outputs with a recorded PDQ hash within `threshold` bits of any given hash (pass dihedral
        variants to find mirrors)."""
        return self.view(production, features=False).match_image(pdq, threshold)

    def match_audio(
        self, fingerprint: AudioFingerprint, threshold: float = AUDIO_THRESHOLD, production: str | None = None
    ) -> list[OutputMatch]:
        """Outputs whose audio lines up with `fingerprint` at a bit error rate ≤ `threshold`."""
        return self.view(production, features=False).match_audio(fingerprint, threshold)


class LedgerView:
    """Recorded outputs loaded into arrays: PDQ hashes scanned with numpy popcounts, audio aligned."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self.records: list[OutputRecord] = []
        self._by_sha: dict[str, list[int]] = {}
        hashes: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        qualities: list[np.ndarray] = []
        self._variants: list[str] = []
        self._audio: list[tuple[int, AudioFingerprint]] = []
        self._features: list[tuple[int, LocalFeatures]] = []
        self._feature_index: _FeatureIndex | None = None
        for row in rows:
            number = len(self.records)
            record = _record(row[:11])
            self.records.append(record)
            self._by_sha.setdefault(record.sha256, []).append(number)
            pdq, variants, audio, features = row[11], row[12], row[13], row[14]
            if features:
                self._features.append((number, LocalFeatures.from_bytes(bytes(features))))
            if pdq:
                packed = np.frombuffer(bytes(pdq), np.uint8).reshape(-1, _HASH_BYTES + 1)
                hashes.append(packed[:, :_HASH_BYTES])
                qualities.append(packed[:, _HASH_BYTES])
                owners.append(np.full(len(packed), number, np.int64))
                names = json.loads(str(variants))
                self._variants += names + [""] * (len(packed) - len(names))
            if audio:
                self._audio.append((number, AudioFingerprint.from_bytes(bytes(audio))))
        self._hashes = (
            np.ascontiguousarray(np.concatenate(hashes)).view(np.uint64) if hashes else np.zeros((0, 4), np.uint64)
        )
        self._qualities = np.concatenate(qualities) if qualities else np.zeros(0, np.uint8)
        self._owners = np.concatenate(owners) if owners else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def match(
        self, fingerprint: OutputFingerprint, *, pdq_threshold: int = PDQ_THRESHOLD,
        audio_threshold: float = AUDIO_THRESHOLD, feature_inliers: int = FEATURE_INLIERS,
    ) -> list[OutputMatch]:  # fmt: skip
        """Every recorded output the fingerprint matches, one match each (exact before near), best first."""
        found: dict[int, OutputMatch] = {}
        for number in self._by_sha.get(fingerprint.sha256, ()):
            found[number] = OutputMatch(self.records[number], "exact", "sha256", 0.0, "same bytes")
        near = self._image_matches(fingerprint.images, pdq_threshold)
        if fingerprint.audio is not None:
            near += self._audio_matches(fingerprint.audio, audio_threshold)
        for number, match in near:
            if number not in found:
                found[number] = match
        if fingerprint.features and not found:  # stage 2, only when nothing cheaper matched
            for number, match in self._feature_matches(fingerprint.features, feature_inliers):
                found.setdefault(number, match)
        return sorted(found.values(), key=_rank)

    def match_features(
        self, features: LocalFeatures | Sequence[LocalFeatures], inliers: int = FEATURE_INLIERS
    ) -> list[OutputMatch]:
        """Outputs whose ORB keypoints map onto the query's by one homography with ≥ `inliers` inliers."""
        queries = [features] if isinstance(features, LocalFeatures) else list(features)
        return [m for _, m in self._feature_matches(queries, inliers)]

    def _feature_matches(self, queries: Sequence[LocalFeatures], needed: int) -> list[tuple[int, OutputMatch]]:
        if not self._features:
            return []
        if self._feature_index is None:
            self._feature_index = _FeatureIndex(self._features)
        best: dict[int, tuple[int, str]] = {}
        for query in queries:
            for owner, inliers in self._feature_index.match(query):
                if inliers >= needed and inliers > best.get(owner, (0, ""))[0]:
                    best[owner] = (inliers, query.variant)
        found = []
        for owner, (inliers, variant) in best.items():
            detail = f"{inliers} ORB inliers ~ {variant}"
            found.append((owner, OutputMatch(self.records[owner], "near", "features", float(inliers), detail)))
        return found

    def match_sha256(self, sha256: str) -> list[OutputMatch]:
        return [
            OutputMatch(self.records[n], "exact", "sha256", 0.0, "same bytes")
            for n in self._by_sha.get(sha256.lower(), ())
        ]

    def match_image(
        self, pdq: bytes | ImageHash | Sequence[bytes | ImageHash], threshold: int = PDQ_THRESHOLD
    ) -> list[OutputMatch]:
        queries = [pdq] if isinstance(pdq, bytes | ImageHash) else list(pdq)
        hashes = [q if isinstance(q, ImageHash) else ImageHash(bytes(q), 100, "query") for q in queries]
        return sorted((m for _, m in self._image_matches(hashes, threshold)), key=lambda m: m.distance)

    def match_audio(self, fingerprint: AudioFingerprint, threshold: float = AUDIO_THRESHOLD) -> list[OutputMatch]:
        return sorted((m for _, m in self._audio_matches(fingerprint, threshold)), key=lambda m: m.distance)

    def _image_matches(self, queries: Sequence[ImageHash], threshold: int) -> list[tuple[int, OutputMatch]]:
        usable = [q for q in queries if q.quality >= MIN_QUALITY and len(q.bits) == _HASH_BYTES]
        if not usable or not len(self._hashes):
            return []
        query = np.frombuffer(b"".join(q.bits for q in usable), np.uint8).reshape(-1, _HASH_BYTES).view(np.uint64)
        best: dict[int, tuple[int, int, int]] = {}
        for start in range(0, len(self._hashes), _CHUNK):
            bank = self._hashes[start : start + _CHUNK]
            distances = np.bitwise_count(query[:, None, :] ^ bank[None, :, :]).sum(axis=2)
            distances[:, self._qualities[start : start + _CHUNK] < MIN_QUALITY] = 1 << 16
            q_index, b_index = np.nonzero(distances <= threshold)
            for qi, bi in zip(q_index.tolist(), b_index.tolist(), strict=True):
                row = start + bi
                owner = int(self._owners[row])
                distance = int(distances[qi, bi])
                if owner not in best or distance < best[owner][0]:
                    best[owner] = (distance, qi, row)
        found = []
        for owner, (distance, qi, row) in best.items():
            detail = f"{self._variants[row] or 'hash'} ~ {usable[qi].variant}"
            found.append((owner, OutputMatch(self.records[owner], "near", "pdq", float(distance), detail)))
        return found

    def _audio_matches(self, fingerprint: AudioFingerprint, threshold: float) -> list[tuple[int, OutputMatch]]:
        found = []
        for owner, stored in self._audio:
            alignment = audio_distance(fingerprint, stored)
            if alignment is None or alignment.ber > threshold:
                continue
            detail = (
                f"ber {alignment.ber:.3f} over {alignment.overlap_seconds:.1f}s, "
                f"query starts at {alignment.offset_seconds:+.1f}s of the output"
            )
            found.append((owner, OutputMatch(self.records[owner], "near", "audio", round(alignment.ber, 4), detail)))
        return found


_ORDER_OF_MEASURES = {"sha256": 0, "pdq": 1, "features": 2, "audio": 3}


def _rank(match: OutputMatch) -> tuple[int, float]:
    """Best first: by measure, then closeness (inliers count the other way)."""
    closeness = -match.distance if match.measure == "features" else match.distance
    return _ORDER_OF_MEASURES[match.measure], closeness


def _row(record: OutputRecord) -> tuple[object, ...]:
    return (
        record.event_id, record.index, record.production, record.user, record.tool, record.ts, record.kind,
        record.location, record.media_type, record.size, record.sha256,
    )  # fmt: skip


def _record(row: Sequence[Any]) -> OutputRecord:
    event_id, index, production, user, tool, ts, kind, location, media_type, size, sha256 = row
    return OutputRecord(
        str(event_id), int(index), str(production), str(user), str(tool), float(ts), str(kind),
        str(location), str(media_type), int(size), str(sha256),
    )  # fmt: skip


class _FeatureIndex:
    """Every recorded output's ORB descriptors in one faiss binary index: 2-NN ratio test, votes per
    output, RANSAC homography on the most-voted few (as the registry's IP image bank does)."""

    _RATIO = 0.8
    _MIN_VOTES = 6
    _TOP = 3
    _RANSAC_PIXELS = 8.0

    def __init__(self, features: Sequence[tuple[int, LocalFeatures]]) -> None:
        import faiss  # searching is for `greenroom provenance scan`; the proxy only records

        arrays = [f.arrays() for _, f in features]
        self._points = np.concatenate([p for p, _ in arrays]) if arrays else np.zeros((0, 2), np.float32)
        descriptors = np.concatenate([d for _, d in arrays]) if arrays else np.zeros((0, 32), np.uint8)
        self._owners = np.concatenate(
            [np.full(f.count, owner, np.int64) for owner, f in features] or [np.zeros(0, np.int64)]
        )
        self._index = faiss.IndexBinaryFlat(256)
        if len(descriptors):
            self._index.add(np.ascontiguousarray(descriptors))

    def match(self, query: LocalFeatures) -> list[tuple[int, int]]:
        """(owner, inliers) for the most-voted recorded outputs."""
        points, descriptors = query.arrays()
        if len(descriptors) < self._MIN_VOTES or self._index.ntotal < 2:
            return []
        distances, labels = self._index.search(np.ascontiguousarray(descriptors), 2)
        good = distances[:, 0] < self._RATIO * distances[:, 1]
        query_points = points[good]
        bank_rows = labels[good, 0]
        owners = self._owners[bank_rows]
        import cv2

        found = []
        candidates, votes = np.unique(owners, return_counts=True)
        for owner in candidates[np.argsort(-votes)][: self._TOP]:
            chosen = owners == owner
            if int(chosen.sum()) < self._MIN_VOTES:
                continue
            _, mask = cv2.findHomography(
                query_points[chosen].astype(np.float32), self._points[bank_rows[chosen]].astype(np.float32),
                cv2.RANSAC, self._RANSAC_PIXELS,
            )  # fmt: skip
            found.append((int(owner), 0 if mask is None else int(mask.sum())))
        return found

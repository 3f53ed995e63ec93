"""The lake's layout and its publication protocol, the same on a folder and on a bucket.

Layout, relative to ``[lake] root`` (a folder, or ``gs://bucket/prefix``)::

    raw/{color}/{color}_tripdata_YYYY-MM.parquet.manifest.json   <- the marker
    raw/{color}/{color}_tripdata_YYYY-MM.{token}.parquet          <- the data it names
    raw/zones/taxi_zone_lookup.csv.manifest.json, taxi_zone_lookup.{token}.csv
    clean/{color}/year=YYYY/month=MM/_quality.json                <- the marker
    clean/{color}/year=YYYY/month=MM/part-0.{token}.parquet       <- the data it lists

**Publication.** A writer writes its data under names that carry its own token
(``host-pid-random``), so no two writers ever write the same object, then publishes by
creating the marker *create-only* (``if_generation_match=0`` on GCS, ``os.link`` on a
folder). Exactly one writer's marker is created; a writer that loses deletes its own data
and takes the winner's. A stage is complete when its marker exists, and readers read only
what the marker names, so a month without its marker is absent, whatever else lies there.

**Orphans.** A writer killed after writing data but before its marker leaves data no marker
names. Each publication of the same file sweeps them: those whose writer ran on this host and
is gone, and any older than ``orphan_age`` (a writer on another host cannot be asked).
Temporary files and upload pieces of dead writers go the same way.

Lakes written before markers were written last (data ``raw/.../x.parquet`` beside a
manifest without ``object``, clean ``part-0.parquet``) read as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain import catalog, quality
from pipeline.domain.errors import LakeDataMissing, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport, SourceManifest
from pipeline.lake.local import writer_token
from pipeline.lake.store import ObjectWriter, Store

log = logging.getLogger(__name__)

QUALITY_FILE = quality.FILE_NAME
MANIFEST_SUFFIX = ".manifest.json"
ZONES_FILE = "taxi_zone_lookup.csv"
ORPHAN_AGE = dt.timedelta(hours=1)
_EXTENSIONS = (".csv.gz", ".parquet", ".csv")
_TOKEN = r"[A-Za-z0-9_]+-[0-9]+-[0-9a-f]{8}"
# What the quality marker's object metadata carries on GCS, so that a backfill's check of
# 480 months is one listing, not 480 reads (see quality_digests).
META_ROWS_OUT, META_CLEAN_SHA256 = "tlc-rows-out", "tlc-clean-sha256"


@dataclass(frozen=True)
class RawFile:
    """A published raw file: its data object and what DownloadMonth recorded about it."""

    name: str  # the data object, relative to the lake's root
    manifest: SourceManifest


@dataclass(frozen=True)
class Digest:
    """What a load's ledger row is compared with: the clean month's rows and files."""

    rows_out: int
    clean_sha256: str

    @classmethod
    def of(cls, report: QualityReport) -> Digest:
        return cls(report["rows_out"], quality.clean_sha256(report))


def split_ext(filename: str) -> tuple[str, str]:
    for ext in _EXTENSIONS:
        if filename.endswith(ext):
            return filename[: -len(ext)], ext
    stem, dot, ext = filename.rpartition(".")
    return (stem, dot + ext) if dot else (filename, "")


class Lake:
    def __init__(self, store: Store, orphan_age: dt.timedelta = ORPHAN_AGE):
        self.store = store
        self.orphan_age = orphan_age

    def __repr__(self) -> str:
        return f"Lake({self.store.root!r})"

    @property
    def root(self) -> str:
        return self.store.root

    # -- names ----------------------------------------------------------------------------
    def raw_name(self, key: MonthKey, fmt: str) -> str:
        return f"raw/{key.color}/{catalog.raw_filename(key, fmt)}"

    def zones_name(self) -> str:
        return f"raw/zones/{ZONES_FILE}"

    @staticmethod
    def manifest_name(raw_name: str) -> str:
        return raw_name + MANIFEST_SUFFIX

    def clean_prefix(self, key: MonthKey) -> str:
        return f"clean/{key.color}/year={key.year:04d}/month={key.month:02d}/"

    def quality_name(self, key: MonthKey) -> str:
        return self.clean_prefix(key) + QUALITY_FILE

    def uri(self, name: str) -> str:
        return self.store.uri(name)

    # -- raw files ------------------------------------------------------------------------
    def new_raw_object(self, raw_name: str) -> str:
        """A name for one writer's copy of ``raw_name``: ``{stem}.{token}{ext}``."""
        stem, ext = split_ext(raw_name)
        return f"{stem}.{writer_token()}{ext}"

    def raw(self, raw_name: str) -> RawFile | None:
        """The published raw file, or None when it is not (completely) there."""
        data = self.store.read_bytes(self.manifest_name(raw_name))
        if data is None:
            return None
        manifest: SourceManifest = json.loads(data)
        obj = manifest.get("object")
        if obj is None:
            # A lake from before markers were written last: the data file had the final
            # name and was renamed into place after its manifest, so it must be there too.
            return RawFile(raw_name, manifest) if self.store.exists(raw_name) else None
        folder = raw_name.rpartition("/")[0]
        return RawFile(f"{folder}/{obj}", manifest)

    def publish_raw(self, raw_name: str, data_name: str, manifest: SourceManifest) -> RawFile:
        """Publish ``data_name`` as ``raw_name`` unless another writer did first; return the
        raw file that stands.

        From the call on, ``data_name`` is this method's (``_create_marker``): the caller
        must not delete it, even if the call raises."""
        manifest = {**manifest, "object": data_name.rpartition("/")[2]}
        body = (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
        won = self._create_marker(self.manifest_name(raw_name), body, {}, [data_name])
        if won:
            standing: RawFile | None = RawFile(data_name, manifest)
        else:
            log.info("%s: another worker published it first; using theirs", self.uri(raw_name))
            self._discard([data_name])
            standing = self.raw(raw_name)
        if standing is None:  # pragma: no cover - a marker that vanished under us
            raise RuntimeError(f"{self.uri(raw_name)}: published, then gone")
        self._sweep_raw(raw_name, keep=standing.name)
        return standing

    def _create_marker(
        self, name: str, body: bytes, metadata: dict[str, str], ours: list[str]
    ) -> bool:
        """``create_only``, and when it raises, what stands: a marker that names ``ours``
        must never be left naming nothing (a month that looks complete and has no file), and
        data no marker names must not wait for a sweep that may never come (the month's next
        publication, which is never once it is complete).

        So the marker is read back: ours (our bytes: the write landed, its answer was lost)
        means we won; none or another's means ours is deleted and the error raised. When
        that read fails too, nothing is known and ``ours`` stays for a later sweep."""
        try:
            return self.store.create_only(name, body, metadata)
        except Exception as error:
            try:
                landed = self.store.read_bytes(name) == body
            except Exception:
                raise error from None  # nothing is known: ours stays for a later sweep
            if landed:
                log.info("%s: created, although the request failed: %s", self.uri(name), error)
                return True
            self._discard(ours)
            raise

    def _discard(self, names: list[str]) -> None:
        """Delete data no marker names; a failure is a warning (a sweep takes it later)."""
        try:
            self.store.delete(names)
        except (PipelineError, OSError) as e:
            log.warning("could not delete %s (a later sweep will): %s", ", ".join(names), e)

    def _sweep_raw(self, raw_name: str, keep: str) -> None:
        stem, ext = split_ext(raw_name)
        pattern = re.compile(re.escape(stem) + r"\.(" + _TOKEN + ")" + re.escape(ext))
        self._sweep(stem + ".", pattern, keep={keep})

    def _sweep(self, prefix: str, pattern: re.Pattern[str], keep: set[str]) -> None:
        """Delete data no marker names (``pattern`` matches a writer's data object and
        captures its token) whose writer is gone or that is older than orphan_age, and the
        temporaries killed writers left under ``prefix``."""
        from pipeline.lake.local import token_is_dead

        # Housekeeping after a publication: a failure here (a listing that ran out of
        # retries, a file another process holds) must not fail the stage, whose marker
        # already stands; the next publication sweeps again.
        cutoff = dt.datetime.now(dt.UTC) - self.orphan_age
        try:
            stale = [
                info.name
                for info in self.store.list_objects(prefix)
                if info.name not in keep
                and (m := pattern.fullmatch(info.name))
                and (token_is_dead(m.group(1)) or info.updated < cutoff)
            ]
            stale += self.store.sweep_temporaries(prefix, self.orphan_age)
            if stale:
                self.store.delete([n for n in stale if n not in keep])
        except (PipelineError, OSError) as e:  # the stores' errors; a bug still raises
            log.warning("could not sweep orphaned objects under %s (the next publication "
                        "will): %s", self.uri(prefix), e)  # fmt: skip
            return
        if stale:
            log.info("swept %d orphaned object(s) of killed writers under %s", len(stale),
                     self.uri(prefix))  # fmt: skip

    # -- clean months ---------------------------------------------------------------------
    def new_clean_object(self, key: MonthKey, part: int = 0) -> str:
        return f"{self.clean_prefix(key)}part-{part}.{writer_token()}.parquet"

    def quality(self, key: MonthKey) -> QualityReport | None:
        """The month's quality report when the month is published, else None."""
        name = self.quality_name(key)
        data = self.store.read_bytes(name)
        return None if data is None else quality.parse(data, self.uri(name))

    def read_quality(self, key: MonthKey) -> QualityReport:
        """The published month's report; a clear error when it is not published."""
        report = self.quality(key)
        if report is None:
            raise FileNotFoundError(
                f"{self.uri(self.quality_name(key))}: {key.label} is not cleaned in the lake"
            )
        return report

    def clean_files(self, key: MonthKey, report: QualityReport) -> list[str]:
        """The month's data objects, as its report lists them."""
        return [self.clean_prefix(key) + f["name"] for f in report["files"]]

    def require_data(self, marker: str, names: Sequence[str], remedy: str) -> None:
        """Raise one clear error when ``marker`` names data the lake does not hold.

        Our writers never leave a marker without its data, so a reader could trust it; but an
        object removed by hand or by a bucket's lifecycle rule would fail the next stage deep
        in pyarrow, DuckDB or a BigQuery job, as a bad source file or an unknown path. One
        existence check per object before a stage reads them costs a request each, against
        a month's worth of reading."""
        missing = [n for n in names if not self.store.exists(n)]
        if missing:
            more = (
                f" (and {len(missing) - 1} more of its {len(names)} objects)"
                if len(missing) > 1
                else ""
            )
            raise LakeDataMissing(
                f"{self.uri(marker)} names {self.uri(missing[0])}{more}, which is not in the "
                f"lake (removed outside the pipeline?); {remedy}"
            )

    def publish_clean(self, key: MonthKey, report: QualityReport) -> QualityReport:
        """Publish the month whose parts ``report`` lists, unless another writer did first;
        return the report that stands. The parts are this method's from the call on, as in
        ``publish_raw``."""
        body = quality.dump(report).encode()
        meta = {
            META_ROWS_OUT: str(report["rows_out"]),
            META_CLEAN_SHA256: quality.clean_sha256(report),
        }
        ours = self.clean_files(key, report)
        won = self._create_marker(self.quality_name(key), body, meta, ours)
        standing = report
        if not won:
            log.info("%s: another worker published it first; using theirs", key.label)
            self._discard(ours)
            standing = self.read_quality(key)
        prefix = self.clean_prefix(key)
        pattern = re.compile(re.escape(prefix) + r"part-\d+\.(" + _TOKEN + r")\.parquet")
        self._sweep(self.clean_prefix(key), pattern, keep=set(self.clean_files(key, standing)))
        return standing

    def quality_digests(self, keys: Iterable[MonthKey]) -> dict[MonthKey, Digest]:
        """The published months among ``keys``, with their digests: from one listing per
        colour when the store keeps them as object metadata (GCS), else from the reports."""
        wanted = set(keys)
        found: dict[MonthKey, Digest] = {}
        unread: list[MonthKey] = []
        for color in sorted({k.color for k in wanted}):
            infos = {i.name: i for i in self.store.list_objects(f"clean/{color}/")}
            for key in (k for k in wanted if k.color == color):
                info = infos.get(self.quality_name(key))
                if info is None:
                    continue
                if META_ROWS_OUT in info.metadata and META_CLEAN_SHA256 in info.metadata:
                    found[key] = Digest(
                        int(info.metadata[META_ROWS_OUT]), info.metadata[META_CLEAN_SHA256]
                    )
                else:
                    unread.append(key)
        for key in unread:
            report = self.quality(key)
            if report is not None:
                found[key] = Digest.of(report)
        return found

    @contextlib.contextmanager
    def local_clean_files(self, key: MonthKey, report: QualityReport) -> Iterator[list[Path]]:
        """The month's parquet as local files (for DuckDB's read_parquet): the lake's own on
        a folder, a temporary copy from a bucket."""
        with self.store.local_copies(self.clean_files(key, report)) as paths:
            yield paths

    # -- writing --------------------------------------------------------------------------
    def writer(self, name: str) -> contextlib.AbstractContextManager[ObjectWriter]:
        return self.store.writer(name)

    # -- forgetting -----------------------------------------------------------------------
    def remove_month(self, key: MonthKey, stages: set[str], dry_run: bool = False) -> list[str]:
        """Delete a month's lake objects for the given stages ("raw", "clean"), markers first
        (so that no reader sees a marker without its data). Used to force a rerun. With
        ``dry_run``, only list them."""
        removed: list[str] = []
        if "raw" in stages:
            markers = [self.manifest_name(self.raw_name(key, f)) for f in catalog.SOURCE_FORMATS]
            stem, _ = split_ext(self.raw_name(key, catalog.SOURCE_FORMATS[0]))
            names = [i.name for i in self.store.list_objects(stem + ".")]
            removed += self._remove(markers, names, dry_run)
        if "clean" in stages:
            names = [i.name for i in self.store.list_objects(self.clean_prefix(key))]
            removed += self._remove([self.quality_name(key)], names, dry_run)
        return removed

    def _remove(self, markers: Sequence[str], names: Sequence[str], dry_run: bool) -> list[str]:
        ordered = sorted(names, key=lambda n: n not in markers)
        if not dry_run:
            for name in ordered:  # one at a time: the marker is gone before any data goes
                self.store.delete([name])
        return [self.uri(n) for n in ordered]


def open_lake(root: str, project: str | None = None, orphan_age: float | None = None) -> Lake:
    """The lake at ``root``: a folder, or gs://bucket/prefix."""
    age = dt.timedelta(seconds=orphan_age) if orphan_age is not None else ORPHAN_AGE
    if root.startswith("gs://"):
        from pipeline.lake.gcs import GcsStore, parse_uri  # the google clients load only here

        bucket, prefix = parse_uri(root)
        return Lake(GcsStore(bucket, prefix, project), age)
    from pipeline.lake.local import LocalStore

    return Lake(LocalStore(Path(root)), age)


def local(root: Path | str) -> Lake:
    """A lake in a folder."""
    from pipeline.lake.local import LocalStore

    return Lake(LocalStore(Path(root)))

"""The quality report: one self-contained HTML file of what the lake and the ledgers know.

Reading, checking and drawing are apart:

- ``quality_objects``/``read_quality`` read every month's ``_quality.json`` with DuckDB.
  On a folder lake DuckDB's ``read_json`` reads the lake's own files. On ``gs://`` DuckDB
  cannot reach the bucket (its httpfs speaks GCS's S3-compatible API with HMAC keys, which
  neither ADC nor the GCS emulator offer), so the store's own client fetches the documents
  (one listing, one read each) into one newline-delimited JSON file in a temporary folder,
  and the same ``read_json`` reads that: one reader, one schema, for both kinds of lake.
- ``find_anomalies`` applies the four checks (``Thresholds`` has their numbers and
  docs/report.md says why) to plain data: pure, so the unit tests craft their inputs.
- ``render`` draws the charts with Plotly, whose plotly.js is inlined once in the page, so
  the file opens from disk with no server and no network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import re
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline.domain import catalog, months
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey, YearMonth
from pipeline.domain.version import VERSION
from pipeline.lake.lake import QUALITY_FILE, Lake
from pipeline.lake.store import ObjectInfo
from pipeline.sinks.base import LoadRecord, Sink

if TYPE_CHECKING:
    import duckdb

FIRST = (2009, 1)  # the axis starts where the TLC's records do, whatever the lake holds
STATE_META = "tlc-report-state"
_QUALITY_NAME = re.compile(r"clean/([a-z]+)/year=(\d{4})/month=(\d{2})/" + re.escape(QUALITY_FILE))

# What DuckDB reads of each report. The per-rule and per-column counts are JSON objects whose
# keys vary by colour and era, so they are read as MAPs, not as structs of a fixed shape.
_JSON_COLUMNS = (
    "{color: 'VARCHAR', year: 'INTEGER', month: 'INTEGER', rows_in: 'BIGINT', "
    "rows_out: 'BIGINT', rows_dropped: 'MAP(VARCHAR, BIGINT)', nulls: 'MAP(VARCHAR, BIGINT)', "
    "files: 'STRUCT(name VARCHAR, \"rows\" BIGINT, bytes BIGINT, sha256 VARCHAR)[]', "
    "source_manifest: 'STRUCT(bytes BIGINT, sha256 VARCHAR)', where_: 'VARCHAR'}"
)
_SELECT = """
    SELECT color, year, month, rows_in, rows_out, rows_dropped, nulls,
           coalesce(list_sum(list_transform(files, f -> f.bytes)), 0) AS clean_bytes,
           coalesce(array_to_string(list_transform(files, f -> f.sha256), ','), '') AS clean_sha,
           source_manifest.bytes AS source_bytes,
           coalesce(where_, filename) AS where_
    FROM read_json(?, columns = {columns}, format = 'auto', filename = true)
    ORDER BY color, year, month
"""


@dataclass(frozen=True)
class MonthQuality:
    """What one ``_quality.json`` says, as the report uses it."""

    key: MonthKey
    rows_in: int
    rows_out: int
    rows_dropped: Mapping[str, int]
    nulls: Mapping[str, int]
    clean_bytes: int
    clean_sha256: str
    source_bytes: int | None = None
    where: str = ""


@dataclass(frozen=True)
class Thresholds:
    """The anomaly checks' numbers (docs/report.md and the report itself say why)."""

    window: int = 12  # calendar months before a month that its checks compare it with
    min_history: int = 3  # fewer loaded months in the window than this: no verdict
    rows_factor: float = 2.0  # rows out below median / f or above median * f
    null_jump: float = 0.20  # a column's null share this much above its trailing median


THRESHOLDS = Thresholds()

ROWS, NULLS, SINKS, LEDGER = "rows", "nulls", "sinks", "ledger"
RULE_TITLES = {
    ROWS: "row count far from its trailing median",
    NULLS: "null share of a column jumps",
    SINKS: "missing in a sink",
    LEDGER: "ledger row disagrees with _quality.json",
}


@dataclass(frozen=True, order=True)
class Anomaly:
    key: MonthKey
    rule: str
    detail: str
    column: str | None = field(default=None, compare=False)


Ledgers = Mapping[str, Mapping[MonthKey, LoadRecord]]


# -- reading -------------------------------------------------------------------------------
def quality_objects(lake: Lake) -> list[ObjectInfo]:
    """The lake's published quality reports (their markers), from one listing."""
    return sorted(
        (i for i in lake.store.list_objects("clean/") if _QUALITY_NAME.fullmatch(i.name)),
        key=lambda i: i.name,
    )


def read_quality(lake: Lake, objects: Sequence[ObjectInfo]) -> list[MonthQuality]:
    """Every listed report, read with DuckDB (see the module's doc for gs://)."""
    import duckdb  # here: every task process imports this module (pipeline/__init__.py), and
    # download and clean workers would pay DuckDB's 56 MB for a report they never draw

    if not objects:
        return []
    con = duckdb.connect(":memory:")
    try:
        local = [lake.store.local_path(i.name) for i in objects]
        if all(p is not None for p in local):
            return _query(con, [str(p) for p in local])
        with tempfile.TemporaryDirectory(prefix="tlc-report-") as tmp:
            ndjson = Path(tmp) / "quality.ndjson"
            with ndjson.open("w") as f:
                for info in objects:
                    data = lake.store.read_bytes(info.name)
                    if data is None:  # deleted between the listing and the read (tlc-forget)
                        continue
                    doc = _json_object(data, lake.uri(info.name))
                    f.write(json.dumps({**doc, "where_": lake.uri(info.name)}) + "\n")
            return _query(con, [str(ndjson)])
    finally:
        con.close()


def _json_object(data: bytes, where: str) -> dict[str, object]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise PipelineError(f"{where}: not a quality report: {e}") from None
    if not isinstance(doc, dict):
        raise PipelineError(f"{where}: not a quality report: not a JSON object")
    return {str(k): v for k, v in doc.items()}


def _query(con: duckdb.DuckDBPyConnection, files: list[str]) -> list[MonthQuality]:
    import duckdb

    try:
        rows = con.execute(_SELECT.format(columns=_JSON_COLUMNS), [files]).fetchall()
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise PipelineError(f"the lake's quality reports could not be read: {first}") from None
    out = []
    for color, year, month, rows_in, rows_out, dropped, nulls, cbytes, csha, sbytes, where in rows:
        if color is None or year is None or month is None or rows_out is None:
            raise PipelineError(f"{where}: not a quality report, it lacks color/year/month/rows")
        out.append(
            MonthQuality(
                MonthKey(str(color), int(year), int(month)),
                int(rows_in or 0),
                int(rows_out),
                {str(k): int(v or 0) for k, v in (dropped or {}).items()},
                {str(k): int(v or 0) for k, v in (nulls or {}).items()},
                int(cbytes),
                str(csha),
                None if sbytes is None else int(sbytes),
                str(where),
            )
        )
    return out


def read_ledgers(sinks: Mapping[str, Sink]) -> dict[str, dict[MonthKey, LoadRecord]]:
    """Each sink's month rows, one read per sink."""
    return {name: dict(sink.loaded_months()) for name, sink in sinks.items()}


def fingerprint(objects: Iterable[ObjectInfo], ledgers: Ledgers) -> str:
    """Names the state a report was drawn from: the quality markers (name, size, time) and
    the ledger rows. Cheap (a listing and one read per sink), so the Report task can tell
    whether its file is still current without reading every report."""
    h = hashlib.sha256(VERSION.encode())
    for i in objects:
        h.update(f"{i.name}|{i.size}|{i.updated.isoformat()}\n".encode())
    for sink in sorted(ledgers):
        for key, r in sorted(ledgers[sink].items()):
            h.update(f"{sink}|{key}|{r.rows_out}|{r.clean_sha256}|{r.loaded_at}\n".encode())
    return h.hexdigest()[:32]


def state_of(path: Path) -> str | None:
    """The fingerprint a report file was drawn from (None: no file, or not a report)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    m = re.search(f'<meta name="{STATE_META}" content="([0-9a-f]+)">', head)
    return m.group(1) if m else None


# -- checks --------------------------------------------------------------------------------
def _history(
    series: Mapping[YearMonth, float], ym: YearMonth, th: Thresholds
) -> list[float] | None:
    """The values of the ``window`` calendar months before ``ym`` that have one, or None
    when there are fewer than ``min_history`` of them."""
    past = [series[p] for i in range(1, th.window + 1) if (p := months.add(ym, -i)) in series]
    return past if len(past) >= th.min_history else None


def row_anomalies(quality: Sequence[MonthQuality], th: Thresholds = THRESHOLDS) -> list[Anomaly]:
    found = []
    for series in _by_color(quality).values():
        rows = {ym: float(q.rows_out) for ym, q in series.items()}
        for ym, q in sorted(series.items()):
            past = _history(rows, ym, th)
            if past is None:
                continue
            median = statistics.median(past)
            low, high = median / th.rows_factor, median * th.rows_factor
            if q.rows_out < low or q.rows_out > high:
                ratio = f"{q.rows_out / median:.2f}x" if median else "infinitely many times"
                found.append(
                    Anomaly(
                        q.key,
                        ROWS,
                        f"{q.rows_out:,} rows out, {ratio} the median {median:,.0f} of the "
                        f"{len(past)} loaded months of the {th.window} before",
                    )
                )
    return found


def null_anomalies(quality: Sequence[MonthQuality], th: Thresholds = THRESHOLDS) -> list[Anomaly]:
    found = []
    for series in _by_color(quality).values():
        columns = sorted({c for q in series.values() for c in q.nulls})
        for column in columns:
            share = {
                ym: q.nulls[column] / q.rows_out
                for ym, q in series.items()
                if q.rows_out and column in q.nulls
            }
            for ym, value in sorted(share.items()):
                past = _history(share, ym, th)
                if past is None:
                    continue
                median = statistics.median(past)
                if value - median >= th.null_jump:
                    found.append(
                        Anomaly(
                            series[ym].key,
                            NULLS,
                            f"{column}: {value:.1%} null, the median of the {len(past)} loaded "
                            f"months before was {median:.1%}",
                            column,
                        )
                    )
    return found


def sink_anomalies(quality: Sequence[MonthQuality], ledgers: Ledgers) -> list[Anomaly]:
    """A month some configured sinks have and others lack; a clean month no sink has."""
    if not ledgers:
        return []
    found = []
    cleaned = {q.key for q in quality}
    for key in sorted(cleaned | {k for ledger in ledgers.values() for k in ledger}):
        have = [name for name in ledgers if key in ledgers[name]]
        lack = [name for name in ledgers if key not in ledgers[name]]
        if have and lack:
            found.append(
                Anomaly(key, SINKS, f"loaded in {', '.join(have)}; missing in {', '.join(lack)}")
            )
        elif not have:
            found.append(
                Anomaly(key, SINKS, f"cleaned in the lake, loaded in none of {', '.join(lack)}")
            )
    return found


def ledger_anomalies(quality: Sequence[MonthQuality], ledgers: Ledgers) -> list[Anomaly]:
    """A ledger row whose rows or clean files are not those of the lake's _quality.json."""
    by_key = {q.key: q for q in quality}
    found = []
    for sink in ledgers:
        for key, record in sorted(ledgers[sink].items()):
            q = by_key.get(key)
            if q is None:
                found.append(Anomaly(key, LEDGER, f"{sink}: loaded, but the lake has no "
                                     "clean month (_quality.json) for it"))  # fmt: skip
                continue
            problems = []
            if record.rows_out != q.rows_out:
                problems.append(f"rows out {record.rows_out:,} vs {q.rows_out:,}")
            if record.rows_in is not None and record.rows_in != q.rows_in:
                problems.append(f"rows in {record.rows_in:,} vs {q.rows_in:,}")
            if record.clean_sha256 != q.clean_sha256:
                problems.append(
                    f"clean digest {record.clean_sha256[:12] or '-'}… vs "
                    f"{q.clean_sha256[:12] or '-'}… (re-cleaned since the load?)"
                )
            if problems:
                found.append(
                    Anomaly(key, LEDGER, f"{sink} ledger vs _quality.json: {'; '.join(problems)}")
                )
    return found


def find_anomalies(
    quality: Sequence[MonthQuality], ledgers: Ledgers, th: Thresholds = THRESHOLDS
) -> list[Anomaly]:
    return sorted(
        row_anomalies(quality, th)
        + null_anomalies(quality, th)
        + sink_anomalies(quality, ledgers)
        + ledger_anomalies(quality, ledgers)
    )


def _by_color(quality: Iterable[MonthQuality]) -> dict[str, dict[YearMonth, MonthQuality]]:
    out: dict[str, dict[YearMonth, MonthQuality]] = defaultdict(dict)
    for q in quality:
        out[q.key.color][q.key.ym] = q
    return dict(sorted(out.items(), key=lambda kv: catalog.COLORS.index(kv[0])))


# -- drawing -------------------------------------------------------------------------------
def rules_text(th: Thresholds = THRESHOLDS) -> list[tuple[str, str]]:
    """(rule, what it flags and why), as the report and docs/report.md state them."""
    return [
        (
            RULE_TITLES[ROWS],
            f"rows out below 1/{th.rows_factor:g} or above {th.rows_factor:g}x the median of "
            f"the same colour's loaded months among the {th.window} calendar months before "
            f"(at least {th.min_history} of them, else no verdict). A year's window holds a "
            "whole season, so summer lows and short Februaries (±20 % in the real files) stay "
            "inside the band, while a halving or a doubling in one month is either a real "
            "event (2020-03/04) or a truncated or wrong file. The median ignores one odd "
            "month in the window.",
        ),
        (
            RULE_TITLES[NULLS],
            f"a column's null share (nulls / rows out) at least {th.null_jump:.0%} points "
            f"above its median over the same {th.window}-month window. The share wobbles by "
            "a few points from month to month (the 'unknown vendor' rows of 2020 onward have "
            "no passenger count); a jump of a fifth of the rows means a source column went "
            "missing or empty, or a new era of the files (the 2016-07 switch from "
            "coordinates to zone ids shows here once per column).",
        ),
        (
            RULE_TITLES[SINKS],
            "a month in some configured sinks' ledgers and not in others; or cleaned in the "
            "lake and loaded in none. Every sink should hold every month the lake holds.",
        ),
        (
            RULE_TITLES[LEDGER],
            "a ledger row whose rows in/out or clean files' sha256 differ from the lake's "
            "_quality.json (the month was re-cleaned after its load, or the load is of other "
            "data), or a ledger row with no clean month in the lake. No tolerance: both are "
            "counts and digests of the same files.",
        ),
    ]


_PALETTE = {"yellow": "#d9a400", "green": "#2e8b57", "fhv": "#4c72b0", "fhvhv": "#8c564b"}
_SINK_DASH = {"duckdb": "solid", "postgres": "dash", "bigquery": "dot"}
_SYMBOLS = {ROWS: "x", NULLS: "diamond", SINKS: "triangle-up", LEDGER: "square"}
_EDGE = {"width": 1, "color": "#222"}
# Every series: a line through the months it has, a gap where a month is missing, and a
# small point per month, so that a lone month (nothing to draw a line to) still shows.
_LINE: dict[str, object] = {"mode": "lines+markers", "marker": {"size": 3}, "connectgaps": False}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _x(ym: YearMonth) -> str:
    return f"{ym[0]:04d}-{ym[1]:02d}-01"


class _Figure(Protocol):
    """What the drawing asks of a Plotly figure (plotly ships no types)."""

    def update_layout(self, **kw: object) -> object: ...
    def update_xaxes(self, **kw: object) -> object: ...


def _layout(fig: _Figure, title: str, height: int, last: YearMonth) -> None:
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.15},
        hovermode="closest",
    )
    fig.update_xaxes(range=[_x(FIRST), _x(months.add(last, 1))])


def _anomaly_traces(anomalies: Sequence[Anomaly], y_of: Mapping[MonthKey, float]) -> list[object]:
    import plotly.graph_objects as go

    traces = []
    for rule, symbol in _SYMBOLS.items():
        hits = [a for a in anomalies if a.rule == rule]
        if not hits:
            continue
        traces.append(
            go.Scatter(
                x=[_x(a.key.ym) for a in hits],
                y=[y_of.get(a.key, 0) for a in hits],
                mode="markers",
                name=f"anomaly: {RULE_TITLES[rule]}",
                marker={"symbol": symbol, "size": 11, "color": "#d62728", "line": _EDGE},
                text=[f"{a.key.label}: {a.detail}" for a in hits],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    return traces


def _figures(
    quality: Sequence[MonthQuality], ledgers: Ledgers, anomalies: Sequence[Anomaly]
) -> list[tuple[str, str, object]]:
    """(id, heading, figure) for each chart."""
    import plotly.graph_objects as go  # heavy: imported only when a report is drawn
    from plotly.subplots import make_subplots

    series = _by_color(quality)
    keys = [q.key.ym for q in quality] + [k.ym for ledger in ledgers.values() for k in ledger]
    last = max(keys)
    axis = list(months.span(FIRST, last))
    xs = [_x(ym) for ym in axis]
    rows_of = {q.key: float(q.rows_out) for q in quality}
    figures: list[tuple[str, str, object]] = []

    rows = go.Figure()
    for color, by_ym in series.items():
        rows.add_trace(go.Scatter(
            x=xs, y=[by_ym[ym].rows_out if ym in by_ym else None for ym in axis], **_LINE,
            name=color, line={"color": _PALETTE.get(color), "width": 2},
            hovertemplate="%{x|%Y-%m}: %{y:,} rows<extra>" + color + "</extra>",
        ))  # fmt: skip
    for trace in _anomaly_traces(anomalies, rows_of):
        rows.add_trace(trace)
    _layout(rows, "Rows per month (rows out of the clean stage), with every anomaly", 460, last)
    rows.update_yaxes(title="rows", rangemode="tozero")
    # A log axis shows the small colours' months (green is a hundredth of yellow) as clearly.
    rows.update_layout(updatemenus=[{
        "type": "buttons", "direction": "right", "x": 1, "xanchor": "right", "y": 1.12,
        "buttons": [
            {"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
            {"label": "log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
        ],
    }])  # fmt: skip
    figures.append(("chart-rows", "Rows per month", rows))

    dropped = go.Figure()
    for color, by_ym in series.items():
        rules = sorted({r for q in by_ym.values() for r in q.rows_dropped})
        for rule in rules:
            dropped.add_trace(go.Scatter(
                x=xs, y=[by_ym[ym].rows_dropped.get(rule, 0) if ym in by_ym else None
                         for ym in axis],
                **_LINE, name=f"{color}: {rule}",
                hovertemplate="%{x|%Y-%m}: %{y:,} dropped<extra>" + f"{color}: {rule}</extra>",
            ))  # fmt: skip
    _layout(dropped, "Rows dropped per rule per month", 400, last)
    dropped.update_yaxes(title="rows dropped", rangemode="tozero")
    figures.append(("chart-dropped", "Rows dropped per rule", dropped))

    for color, by_ym in series.items():
        order = [c.name for c in catalog.SCHEMAS.get(color, ())]
        present = {c for q in by_ym.values() for c in q.nulls}
        columns = [c for c in order if c in present] + sorted(present - set(order))
        z = [
            [by_ym[ym].nulls.get(c, 0) / by_ym[ym].rows_out
             if ym in by_ym and by_ym[ym].rows_out else None for ym in axis]
            for c in columns
        ]  # fmt: skip
        heat = go.Figure(go.Heatmap(
            z=z, x=xs, y=columns, zmin=0, zmax=1, colorscale="Reds", xgap=0, ygap=1,
            colorbar={"title": "null share", "tickformat": ".0%"},
            hovertemplate="%{y} %{x|%Y-%m}: %{z:.1%} null<extra></extra>",
        ))  # fmt: skip
        hits = [a for a in anomalies if a.rule == NULLS and a.key.color == color]
        if hits:
            heat.add_trace(go.Scatter(
                x=[_x(a.key.ym) for a in hits], y=[a.column for a in hits], mode="markers",
                name="anomaly: null share jumps",
                marker={"symbol": "diamond-open", "size": 12, "color": "#1f3b99",
                        "line": {"width": 2}},
                text=[f"{a.key.label}: {a.detail}" for a in hits],
                hovertemplate="%{text}<extra></extra>",
            ))  # fmt: skip
        _layout(heat, f"Null share per column and month: {color}", 160 + 22 * len(columns), last)
        heat.update_yaxes(autorange="reversed")
        figures.append((f"chart-nulls-{color}", f"Null share per column: {color}", heat))

    sizes = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                          subplot_titles=("File size (MB)", "Load seconds, per sink"))  # fmt: skip
    mb = 1024 * 1024
    for color, by_ym in series.items():
        src = [by_ym[ym].source_bytes if ym in by_ym else None for ym in axis]
        sizes.add_trace(go.Scatter(
            x=xs, y=[None if b is None else b / mb for b in src], **_LINE,
            name=f"{color}: TLC file", line={"color": _PALETTE.get(color)},
            hovertemplate="%{x|%Y-%m}: %{y:.1f} MB<extra>" + color + " TLC file</extra>",
        ), row=1, col=1)  # fmt: skip
        sizes.add_trace(go.Scatter(
            x=xs, y=[by_ym[ym].clean_bytes / mb if ym in by_ym else None for ym in axis],
            **_LINE, name=f"{color}: clean parquet",
            line={"color": _PALETTE.get(color), "dash": "dot"},
            hovertemplate="%{x|%Y-%m}: %{y:.1f} MB<extra>" + color + " clean</extra>",
        ), row=1, col=1)  # fmt: skip
    for sink, ledger in ledgers.items():
        for color in sorted({k.color for k in ledger}, key=catalog.COLORS.index):
            by_ym_rec = {k.ym: r for k, r in ledger.items() if k.color == color}
            sizes.add_trace(go.Scatter(
                x=xs, y=[by_ym_rec[ym].seconds if ym in by_ym_rec else None for ym in axis],
                **_LINE, name=f"{color} → {sink}",
                line={"color": _PALETTE.get(color), "dash": _SINK_DASH.get(sink, "solid")},
                hovertemplate="%{x|%Y-%m}: %{y:.2f} s<extra>" + f"{color} → {sink}</extra>",
            ), row=2, col=1)  # fmt: skip
    _layout(sizes, "File size and load time per month", 560, last)
    sizes.update_yaxes(title_text="MB", row=1, col=1, rangemode="tozero")
    sizes.update_yaxes(title_text="seconds", row=2, col=1, rangemode="tozero")
    figures.append(("chart-sizes", "File size and load seconds", sizes))
    return figures


def _div(fig: object, div_id: str) -> str:
    """The chart's div and the script that draws it (plotly.js itself is in the page's head)."""
    import plotly.io as pio

    opts = {"full_html": False, "include_plotlyjs": False, "config": _PLOT_CONFIG}
    return str(pio.to_html(fig, div_id=div_id, **opts))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1280px; color: #222; }
h1 { margin-bottom: 4px; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.rule { white-space: nowrap; }
.none { color: #2e7d32; } .count { color: #b71c1c; font-weight: 600; }
.chart { margin: 12px 0 28px; } dl dt { font-weight: 600; margin-top: 8px; }
"""


def render(
    quality: Sequence[MonthQuality],
    ledgers: Ledgers,
    anomalies: Sequence[Anomaly],
    state: str,
    lake_root: str,
    th: Thresholds = THRESHOLDS,
    now: dt.datetime | None = None,
) -> str:
    """The whole page: plotly.js inlined once, then each chart's data and call."""
    from plotly.offline import get_plotlyjs

    e = html.escape
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    colors = ", ".join(f"{c} ({n})" for c, n in
                       ((c, len(s)) for c, s in _by_color(quality).items()))  # fmt: skip
    sinks = ", ".join(f"{s} ({len(rows)} months)" for s, rows in ledgers.items()) or "none"
    if anomalies:
        table = "".join(
            f"<tr><td>{e(a.key.label)}</td><td class='rule'>{e(RULE_TITLES[a.rule])}</td>"
            f"<td>{e(a.detail)}</td></tr>"
            for a in anomalies
        )
        flagged = (
            f"<p class='count'>{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}"
            "</p><table id='anomalies'>"
            f"<tr><th>month</th><th>check</th><th>detail</th></tr>{table}</table>"
        )
    else:
        flagged = "<p class='none' id='anomalies'>No anomalies.</p>"
    charts = "".join(
        f"<h2>{e(heading)}</h2><div class='chart'>{_div(fig, div_id)}</div>"
        for div_id, heading, fig in _figures(quality, ledgers, anomalies)
    )
    rules = "".join(f"<dt>{e(t)}</dt><dd>{e(why)}</dd>" for t, why in rules_text(th))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="{STATE_META}" content="{state}">
<meta name="generator" content="tlc-pipeline {e(VERSION)}">
<title>TLC pipeline: quality report</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>TLC pipeline: quality report</h1>
<p class="meta">Drawn {e(when)} from the lake {e(lake_root)}: {len(quality)} clean months,
{e(colors)}. Ledgers: {e(sinks)}.</p>
<h2>Anomalies</h2>{flagged}
{charts}
<h2>How anomalies are found</h2><dl>{rules}</dl>
</body></html>
"""


# -- the whole job -------------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    path: Path
    months: int
    anomalies: list[Anomaly]


def write_report(
    lake: Lake,
    sinks: Mapping[str, Sink],
    out: Path,
    th: Thresholds = THRESHOLDS,
    now: dt.datetime | None = None,
) -> Written:
    """Read the lake and the sinks' ledgers, check, draw, and write ``out`` whole (a
    temporary file renamed into place, so a reader never opens half a report)."""
    objects = quality_objects(lake)
    quality = read_quality(lake, objects)
    if not quality:
        raise PipelineError(f"{lake.uri('clean/')}: no clean months in the lake, nothing to report")
    ledgers = read_ledgers(sinks)
    found = find_anomalies(quality, ledgers, th)
    page = render(quality, ledgers, found, fingerprint(objects, ledgers), lake.root, th, now)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PipelineError(f"{out}: the report could not be written: {e.strerror}") from None
    return Written(out, len(quality), found)


def is_current(path: Path, lake: Lake, sinks: Mapping[str, Sink]) -> bool:
    """Whether ``path`` is a report of the lake and ledgers as they are now."""
    drawn = state_of(path)
    return drawn is not None and drawn == fingerprint(quality_objects(lake), read_ledgers(sinks))

"""The quality report's one reader and one writer."""

from __future__ import annotations

import pytest

from pipeline.domain import quality
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from tests.support.data import sample_report


def test_parse_refuses_what_is_not_a_report():
    where = "lake/clean/green/year=2021/month=01/_quality.json"
    with pytest.raises(PipelineError, match=f"^{where}: not a quality report: "):
        quality.parse('{"color": "green", ', where)  # cut short
    with pytest.raises(PipelineError, match=r"not a quality report, it lacks \[.*'rows_out'"):
        quality.parse('{"color": "green", "year": 2021, "month": 1}', where)
    with pytest.raises(PipelineError, match="not a quality report"):
        quality.parse("[1, 2, 3]", where)
    report = sample_report()
    del report["files"]
    with pytest.raises(PipelineError, match=r"lacks \['files'\]"):
        quality.parse(quality.dump(report), where)


def test_dump_then_parse_gives_the_same_report():
    report = sample_report()
    text = quality.dump(report)
    assert text.endswith("}\n")
    assert quality.parse(text, "q") == report
    assert quality.parse(text.encode(), "q") == report  # bytes, as read from GCS
    assert quality.dump(quality.parse(text, "q")) == text
    assert quality.key(report) == MonthKey("green", 2021, 1)
    assert quality.label(report) == "green 2021-01"
    assert quality.clean_sha256(report) == "cd" * 32
    assert quality.source_sha256(report) == "ab" * 32
    assert quality.source_sha256({**report, "source_manifest": None}) == ""
    assert quality.rows_line(report) == (
        "76,518 rows in, 76,368 out (dropped passenger_count_zero 143, pickup_outside_month 7)"
    )

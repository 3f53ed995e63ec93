"""The download's pure parts: verifying crafted bytes, and keeping URL credentials out of
messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.errors import BadSourceFile
from pipeline.extract.download import redact_url, verify_file


def test_verify_rejects_gzip_without_header(tmp_path: Path):
    import gzip

    p = tmp_path / "x.csv.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(BadSourceFile, match="no CSV header"):
        verify_file(p, "csv.gz")


def test_redact_url_hides_credentials():
    red = redact_url("https://user:s3cret@host.example:8443/trip-data/x.parquet?sig=abc&k=1")
    assert "s3cret" not in red
    assert "abc" not in red
    assert "user" not in red
    assert red.startswith("https://***@host.example:8443/trip-data/x.parquet")

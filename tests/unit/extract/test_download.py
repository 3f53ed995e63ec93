"""The download's pure parts: verifying crafted bytes, and keeping URL credentials out of
messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.errors import BadSourceFile
from pipeline.extract.download import redact_url, scrub
from pipeline.extract.verify import verify_file


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


def test_scrub_removes_the_urls_secrets_from_a_drivers_message():
    url = "https://user:s3cret@host.example/trip-data/x.parquet?sig=abc123"
    text = f"HTTPSConnectionPool: Max retries exceeded with url: {url} (Caused by ...)"
    clean = scrub(text, url)
    assert "s3cret" not in clean
    assert "abc123" not in clean
    assert "user:" not in clean
    assert "/trip-data/x.parquet" in clean
    assert scrub("refused", "http://127.0.0.1:1/x.parquet") == "refused"  # nothing to hide

"""What every task process pays before it does anything: ``luigi --module pipeline`` imports
the package, and each download or clean worker is one such process."""

from __future__ import annotations

import subprocess
import sys


def test_the_package_does_not_import_duckdb_or_the_cloud_clients():
    """DuckDB costs 56 MB of RSS and the GCS/BigQuery clients 25 MB: only the sinks and the
    stores that use them import them (a report module importing DuckDB at the top took the
    clean's process from 363 to 390 MB)."""
    code = (
        "import sys, pipeline, pipeline.transform.clean, pipeline.extract.download; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'duckdb', 'google', 'pandas', 'plotly'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

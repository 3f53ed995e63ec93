"""The fixtures are in tests/support/fixtures.py. This file registers them and marks every test
by the services its fixtures start (markers declared in setup.cfg), so that

    pytest -m "not postgres and not gcp and not luigid and not container"

runs what needs none of them, and `pytest tests/unit` never needs one (checked here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures"]

# marker -> the fixtures that start (or need) that service. A test's fixture names include the
# fixtures its fixtures use (gcs_env, gcp_env, faulty: fake_gcs ...), so those are marked too.
SERVICE_FIXTURES = {
    "postgres": {"pg_database", "pg", "pg_env", "own_cluster"},
    "gcp": {"fake_gcs", "local_bigquery", "gcs_bucket", "bq_dataset"},
    "luigid": {"luigid", "any_luigid"},
}
SERVICE_MARKERS = {*SERVICE_FIXTURES, "container"}
DATA_FIXTURES = {"tlc"}  # the real files in ../shared/data/tlc
UNIT = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in SERVICE_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
        if UNIT in item.path.parents:
            services = sorted({m.name for m in item.iter_markers()} & SERVICE_MARKERS)
            if services or used & DATA_FIXTURES:
                misplaced.append(f"{item.nodeid}: {services + sorted(used & DATA_FIXTURES)}")
    if misplaced:
        raise pytest.UsageError(
            "tests/unit must need no service and no shared data; move these to "
            "tests/integration:\n  " + "\n  ".join(misplaced)
        )

"""docs/dbt/sources.yml is generated from the catalog, the generator runs as a module, and the
file is the dbt source it claims to be: every canonical table and column, described."""

from __future__ import annotations

import subprocess
import sys

from ruamel.yaml import YAML

from pipeline.domain import catalog
from tests.support.fixtures import REPO
from tools.dbt_sources import sources_yaml

SOURCES = REPO / "docs" / "dbt" / "sources.yml"


def test_docs_dbt_sources_yml_is_generated_from_the_catalog():
    assert SOURCES.read_text() == sources_yaml(), (
        "docs/dbt/sources.yml is stale: run `python -m tools.dbt_sources > docs/dbt/sources.yml`"
    )


def test_dbt_sources_module_runs():
    out = subprocess.run(
        [sys.executable, "-m", "tools.dbt_sources"], capture_output=True, text=True, check=True
    )
    assert out.stdout == sources_yaml()
    assert "RuntimeWarning" not in out.stderr


def test_every_canonical_table_and_column_is_described():
    doc = YAML(typ="safe").load(SOURCES.read_text())
    assert doc["version"] == 2
    (source,) = doc["sources"]
    assert "tlc_schema" in source["schema"]
    tables = {t["name"]: t for t in source["tables"]}
    wanted = {catalog.trips_table(c): catalog.arrow_schema(c) for c in catalog.COLORS}
    wanted[catalog.ZONES_TABLE] = catalog.ZONES_SCHEMA
    assert list(tables) == list(wanted)
    for name, schema in wanted.items():
        columns = tables[name]["columns"]
        assert [c["name"] for c in columns] == schema.names, name
        assert all(c["description"].strip() for c in columns), name
        assert [c["meta"]["arrow_type"] for c in columns] == [str(t) for t in schema.types]
    yellow = {c["name"]: c for c in tables["yellow_trips"]["columns"]}
    assert yellow["pu_location_id"]["meta"]["tlc_name"] == "PULocationID"
    assert yellow["pickup_datetime"]["meta"]["tlc_name"] == "tpep_pickup_datetime"

"""The TLC zone lookup CSV, read into the canonical ``taxi_zones`` columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.domain import catalog
from pipeline.domain.errors import BadSourceFile, SchemaError
from pipeline.extract.sources import RawInput


def read_zones(where: RawInput | Path) -> pa.Table:
    raw = where if isinstance(where, RawInput) else RawInput.local(where)
    try:
        with raw.open_stream() as stream:
            table = pacsv.read_csv(
                stream,  # type: ignore[arg-type]  # a NativeFile: the stubs omit it
                convert_options=pacsv.ConvertOptions(
                    column_types={"LocationID": pa.int32()}, strings_can_be_null=True
                ),
            )
    except (pa.ArrowException, OSError) as e:  # an HTML page, a bad row, LocationID "x"
        detail = " ".join(str(e).split())[:300]
        raise BadSourceFile(f"{raw.name}: not a readable zone lookup CSV: {detail}") from None
    renamed = {}
    for name in table.column_names:
        canon = catalog.ZONES_COLUMNS.get(catalog.normalise_name(name))
        if canon is None:
            raise SchemaError(f"{raw.name}: unknown zone lookup column {name!r}")
        renamed[name] = canon
    missing = set(catalog.ZONES_COLUMNS.values()) - set(renamed.values())
    if missing:
        raise SchemaError(f"{raw.name}: zone lookup lacks {sorted(missing)}")
    table = table.rename_columns([renamed[n] for n in table.column_names])
    try:
        return table.select(catalog.ZONES_SCHEMA.names).cast(catalog.ZONES_SCHEMA)
    except pa.ArrowException as e:
        raise SchemaError(f"{raw.name}: zone lookup columns of the wrong type: {e}") from None

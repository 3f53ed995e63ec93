"""The release of tlc-pipeline, recorded in every quality report and load ledger row."""

VERSION = "0.1.0"

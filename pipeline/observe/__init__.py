"""Looking at what the pipeline did: reports over the lake's quality files and the ledgers."""

"""Looking at what the pipeline has done: which months are loaded where (``status``), and a
report over the lake's quality files and the ledgers (``report``)."""

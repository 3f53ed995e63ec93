"""Looking at what the pipeline has done: which months are loaded where (``status``)."""

"""The data lake: where each stage's files live, and how they are published.

``local`` is the lake folder (paths, atomic publication, temporary names, hashes, the quality
report's file); ``gcs`` is its copy on Google Cloud Storage. Neither calls a warehouse.
"""

"""Data on disk: fairseq-compatible manifests, label files and dictionaries."""

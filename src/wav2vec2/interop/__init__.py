"""Checkpoint interop: our format, HuggingFace transformers, fairseq, the HF hub."""

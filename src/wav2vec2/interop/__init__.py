"""Foreign checkpoint formats: HuggingFace transformers, fairseq, the HF hub. Each reader
returns our neutral record (``wav2vec2.checkpoint.model_dir.LoadedCheckpoint``)."""

"""The wav2vec 2.0 network, one module per job."""

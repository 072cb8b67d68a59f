"""The built-in English speech corpus, and importers for real corpora.

``wav2vec2 corpus make`` synthesizes multi-speaker speech with Debian's TTS engines from
offline text (:mod:`.make`); ``librispeech`` and ``tsv`` import real corpora
(:mod:`.importers`). Both write fairseq manifests and labels (:mod:`wav2vec2.data.manifest`).
"""

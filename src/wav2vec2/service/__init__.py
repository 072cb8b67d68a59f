"""The transcription service (``wav2vec2 serve``): FastAPI over one inference engine.

- :mod:`~wav2vec2.service.app`: the app factory and its routes;
- :mod:`~wav2vec2.service.batching`: dynamic batching over a bounded queue;
- :mod:`~wav2vec2.service.listen` / :mod:`~wav2vec2.service.streaming`: live transcription;
- :mod:`~wav2vec2.service.uploads`: audio out of requests, in memory;
- :mod:`~wav2vec2.service.limits`: JSON errors and the API key;
- ``static/``: the web page.
"""

from wav2vec2.service.app import create_app
from wav2vec2.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]

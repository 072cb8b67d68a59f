"""``python -m wav2vec2`` (also what ``torchrun -m wav2vec2`` runs)."""

import logging
import os
import sys

from wav2vec2.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # Under torchrun, a worker that has finished its work (process group destroyed, files
    # written and closed) was seen to abort while the interpreter shut down: "terminate
    # called without an active exception" with no Python frame left, about one run in ten
    # on a loaded 2-core machine, which torchrun reports as a failed job. Leave without
    # running C++ static destructors, after flushing what Python still holds.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)

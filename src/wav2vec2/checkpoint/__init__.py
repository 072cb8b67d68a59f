"""Our own on-disk formats: the model directory and the training checkpoint around it.

Below ``interop/`` (whose readers return :class:`model_dir.LoadedCheckpoint`) and
``training/`` (which saves and resumes through :mod:`training_state`).
"""

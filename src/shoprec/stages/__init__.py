"""The pipeline's stages, one module per ``dvc.yaml`` stage.

Each module holds the one function that DVC (through the CLI), Prefect (through DVC), the
CLI and the tests call: it takes every input and output path as an argument and the
params it reads, and leaves the modelling to the domain packages (``data``, ``text``,
``models``, ``search``, ``evaluation``, ``serving``).
"""

"""One module per subcommand family that is not in ``sparsim/cli.py``.

Each module defines ``register(subparsers)``, which adds its subcommand(s) with ``set_defaults(func=...)``,
and may define ``errors()``, returning the exception types whose messages the CLI prints as one line with
exit status 2. ``sparsim.cli`` discovers the modules here; nothing else needs to change to add one.
Keep imports of heavy packages (torch, numba, dask, pymoo) inside the functions.
"""

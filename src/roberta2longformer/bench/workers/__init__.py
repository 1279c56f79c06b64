"""One benchmark case per process: each module here is run as ``python -m …workers.NAME PARAMS_JSON``
(by :func:`..measure.run_worker`) and prints its result as one JSON line per measurement."""

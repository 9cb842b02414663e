"""Imported last by the worker processes' fork server (:class:`app.api.workers.WorkerPool`
preloads it after scikit-learn and the compiled kernels): what the server imported is
collected once and frozen there, so every worker forked from it starts with those
long-lived objects out of the collector's way. Each new worker's own full collection
then walks only what it made itself (it walked all of SciPy's and pandas' objects, 0.1 s
a worker), and its collections leave the pages it shares with the server untouched."""

import gc

gc.collect()
gc.freeze()

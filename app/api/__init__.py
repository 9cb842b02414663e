"""Front door: the HTTP API (`vigil serve`): the FastAPI routes (``server``), the worker
processes that score for them (``workers``) and the Prometheus figures (``metrics``).
Routes call the use cases in :mod:`app.services`."""

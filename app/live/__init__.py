"""Front door: the live path run from the command line: rows scored as they arrive
(``stream``), files that land in a folder (``watch``) and a file replayed at a rate
(``replay``). It calls the use cases in :mod:`app.services`."""

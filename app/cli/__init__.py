"""Front door: the `vigil` command line (``main``). The one door that may open the others:
`vigil stream`, `watch` and `replay` start :mod:`app.live`, `vigil serve` starts
:mod:`app.api`."""

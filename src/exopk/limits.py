"""Bounds on what exopk accepts, in a module without imports so the CLI can name them cheaply."""

__all__ = ["MAX_DOSES", "MIN_CHAINS", "MIN_DRAWS"]

MAX_DOSES = 10_000   # doses in a regimen (exopk.dosing): daily dosing over 27 years
MIN_CHAINS = 2       # split R-hat and ESS (exopk.inference.diagnostics) need 2 chains ...
MIN_DRAWS = 4        # ... of at least 4 draws each

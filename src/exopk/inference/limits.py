"""The smallest runs exopk diagnoses; a module without imports, so the CLI can name them cheaply."""

__all__ = ["MIN_CHAINS", "MIN_DRAWS"]

MIN_CHAINS = 2   # split R-hat and ESS (exopk.inference.diagnostics) need 2 chains ...
MIN_DRAWS = 4    # ... of at least 4 draws each

"""Bayesian inference: posteriors, samplers, diagnostics and fit results."""

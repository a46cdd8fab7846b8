"""Model definitions: domain objects, model files, expressions and priors."""

from exopk.model.priors import Prior
from exopk.model.spec import (Compartment, EndogenousInput, Model, Output, Parameter,
                              PlausibilityBound, Route, SpeciesSpec, Transfer)
from exopk.model.toml_file import load_model, parse_model

__all__ = ["Compartment", "EndogenousInput", "Model", "Output", "Parameter", "PlausibilityBound", "Prior",
           "Route", "SpeciesSpec",
           "Transfer", "load_model", "parse_model"]

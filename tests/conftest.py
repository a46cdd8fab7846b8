"""Shared test helpers."""

from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=exopk.available_models())
def shipped_model(request):
    """Every model shipped in models/."""
    return exopk.load_model(exopk.model_path(request.param))


def mixed_regimen(model):
    """A bolus by the model's last route plus an IV infusion overlapping a repeat dose."""
    last = model.routes[-1].name
    first = model.routes[0].name
    return (exopk.Regimen.repeated(last, 100.0, interval=120.0, count=2)
            + exopk.Regimen.infusion(first, 50.0, duration=30.0, time=10.0))


def exercised_parameters(model, seed=0):
    """A parameter set away from the nominal one, with switched-off rates switched on."""
    compiled = compile_model(model)
    rng = np.random.default_rng(seed)
    theta = compiled.nominal.copy()
    for i, parameter in enumerate(model.parameters):
        if parameter.name == "macrophage_depletion":
            theta[i] = 0.5
        elif parameter.unit == "1":
            theta[i] = np.clip(theta[i] * rng.uniform(0.8, 1.2), 0.05, 0.95)
        elif theta[i] == 0.0:
            theta[i] = 1e-3 * rng.uniform(0.5, 2.0)
        else:
            theta[i] *= np.exp(rng.normal(0, 0.3))
    return theta

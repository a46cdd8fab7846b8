"""The Examples sections of public docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["exopk.physiology", "exopk.dosing", "exopk.model.spec", "exopk.model.expressions",
           "exopk.observation.likelihood",
           "exopk.model.priors", "exopk.engine.simulation", "exopk.engine.pints_model",
           "exopk.inference.samplers", "exopk.inference.coordinates", "exopk.inference.posterior",
           "exopk.inference.summary", "exopk.provenance"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

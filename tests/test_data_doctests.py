"""The Examples sections of exopk.data's docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["exopk.data", "exopk.data.units"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

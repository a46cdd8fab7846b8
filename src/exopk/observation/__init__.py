"""Observation models: from simulations to the numbers studies publish, and their likelihood."""

from exopk.observation.events import event_observations
from exopk.observation.likelihood import Likelihood
from exopk.observation.predictions import KINDS, Request, predict
from exopk.observation.records import ErrorModel, Observation, Skipped, build_observations

__all__ = ["ErrorModel", "KINDS", "Likelihood", "Observation", "Request", "Skipped",
           "build_observations", "event_observations", "predict"]

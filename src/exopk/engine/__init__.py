"""Simulation engines: exact linear solutions and an ODE solver for saturable models."""

from exopk.engine.compiled import CompiledModel, compile_model
from exopk.engine.simulation import SimulationArrays, evaluate, simulate

__all__ = ["CompiledModel", "SimulationArrays", "compile_model", "evaluate", "simulate"]

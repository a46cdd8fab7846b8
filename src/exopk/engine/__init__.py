"""Simulation engines: exact linear solutions and an ODE solver for saturable models."""

from exopk.engine.simulation import SimulationArrays, evaluate, simulate

__all__ = ["SimulationArrays", "evaluate", "simulate"]

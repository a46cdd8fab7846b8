"""Dosing regimens: boluses, zero-order infusions, repeated doses, several routes at once.

Amounts are in the model's amount unit and times in its time unit. A regimen holds at most
``MAX_DOSES`` (10,000) doses: enough for daily dosing over 27 years, and a bound that keeps a
mistyped count from exhausting memory and time.

Examples
--------
>>> from exopk.dosing import Regimen
>>> regimen = Regimen.bolus("iv", 100.0) + Regimen.repeated("intranasal", 10.0, interval=60, count=3)
>>> [(d.route, d.time) for d in regimen.doses]
[('iv', 0.0), ('intranasal', 0.0), ('intranasal', 60.0), ('intranasal', 120.0)]
>>> regimen.total_amount
130.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from exopk.errors import SimulationError
from exopk.limits import MAX_DOSES

__all__ = ["Dose", "Regimen", "MAX_DOSES"]


@dataclass(frozen=True)
class Dose:
    """One administration.

    Attributes
    ----------
    route : str
        Route name of the model (``iv``, ``intranasal``, ...).
    amount : float
        Amount given (model amount unit), non-negative.
    time : float
        Start time (model time unit), non-negative.
    duration : float
        Infusion duration; 0 for a bolus.
    steady_state_interval : float, optional
        If given, the system is at the periodic steady state of this dose repeated every
        ``steady_state_interval`` just before it is given (bolus only; sinks start at zero).

    Examples
    --------
    A 30-min infusion of 50 amount units starting at 60 min:

    >>> from exopk import Dose, Regimen
    >>> dose = Dose("iv", 50, time=60, duration=30)
    >>> dose.amount, dose.is_infusion
    (50.0, True)
    >>> Regimen((dose, Dose("iv", 100))).total_amount
    150.0

    Impossible doses are refused where they are made:

    >>> Dose("iv", -1)
    Traceback (most recent call last):
    ...
    exopk.errors.SimulationError: dose amount must not be negative, got -1 (route 'iv')
    """

    route: str
    amount: float
    time: float = 0.0
    duration: float = 0.0
    steady_state_interval: float | None = None

    def __post_init__(self):
        for attr in ("amount", "time", "duration"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SimulationError(f"dose {attr} must be a finite number, got {value!r} "
                                      f"(route '{self.route}')")
            if value < 0:
                raise SimulationError(f"dose {attr} must not be negative, got {value} "
                                      f"(route '{self.route}')")
            object.__setattr__(self, attr, float(value))
        interval = self.steady_state_interval
        if interval is not None:
            if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
                raise SimulationError(f"steady_state_interval must be positive, got {interval!r}")
            if self.duration > 0:
                raise SimulationError("steady-state dosing is supported for boluses only")

    @property
    def is_infusion(self) -> bool:
        return self.duration > 0


@dataclass(frozen=True)
class Regimen:
    """An ordered collection of doses. Combine regimens with ``+``.

    Examples
    --------
    Two IV boluses of 100 an hour apart into one compartment (CL 0.1 mL/min, V 1 mL, so
    k = 0.1/min): just after the second dose the amount is ``100 exp(-61 k) + 100 exp(-k)``.

    >>> import numpy as np, exopk
    >>> regimen = exopk.Regimen.repeated("iv", 100, interval=60, count=2)
    >>> [d.time for d in regimen.doses], regimen.total_amount
    ([0.0, 60.0], 200.0)
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> ds = exopk.simulate(model, {"CL": 0.1, "V_plasma": 1.0}, times=[61], regimen=regimen)
    >>> amount = float(ds["amount"].sel(compartment="plasma", time=61))
    >>> print(f"{amount:.4f} {100 * np.exp(-6.1) + 100 * np.exp(-0.1):.4f}")
    90.7080 90.7080

    A 10-min infusion of 100 reaches ``(100 / 10) / k (1 - exp(-10 k))`` at its end:

    >>> ds = exopk.simulate(model, {"CL": 0.1, "V_plasma": 1.0}, times=[10],
    ...                     regimen=exopk.Regimen.infusion("iv", 100, duration=10))
    >>> print(f"{float(ds['amount'].sel(compartment='plasma', time=10)):.4f}",
    ...       f"{100 * (1 - np.exp(-1)):.4f}")
    63.2121 63.2121
    """

    doses: tuple[Dose, ...]

    def __post_init__(self):
        doses = tuple(sorted(self.doses, key=lambda d: d.time))
        object.__setattr__(self, "doses", doses)
        if not doses:
            raise SimulationError("a regimen needs at least one dose")
        if len(doses) > MAX_DOSES:
            raise SimulationError(f"a regimen holds at most {MAX_DOSES} doses, got {len(doses)}")
        if not math.isfinite(sum(d.amount for d in doses)):
            raise SimulationError("the doses of the regimen add up to more than the largest "
                                  "floating-point number; use a larger amount unit")

    def __add__(self, other: "Regimen") -> "Regimen":
        return Regimen(self.doses + other.doses)

    @classmethod
    def bolus(cls, route: str, amount: float, time: float = 0.0) -> "Regimen":
        """A single bolus."""
        return cls((Dose(route, amount, time),))

    @classmethod
    def infusion(cls, route: str, amount: float, duration: float, time: float = 0.0) -> "Regimen":
        """A zero-order infusion of ``amount`` over ``duration``."""
        if not duration > 0:
            raise SimulationError(f"infusion duration must be positive, got {duration!r}")
        return cls((Dose(route, amount, time, duration),))

    @classmethod
    def repeated(cls, route: str, amount: float, *, interval: float, count: int,
                 start: float = 0.0, duration: float = 0.0) -> "Regimen":
        """``count`` doses every ``interval`` from ``start`` (boluses, or infusions of ``duration``)."""
        if isinstance(count, bool) or not (isinstance(count, int) and 1 <= count <= MAX_DOSES):
            raise SimulationError(f"count must be an integer from 1 to {MAX_DOSES}, got {count!r}")
        if isinstance(interval, bool) or not (isinstance(interval, (int, float))
                                              and math.isfinite(interval) and interval > 0):
            raise SimulationError(f"interval must be a positive number, got {interval!r}")
        return cls(tuple(Dose(route, amount, start + k * interval, duration) for k in range(count)))

    @cached_property
    def total_amount(self) -> float:
        """Sum of all dose amounts: the reference for %ID outputs."""
        return float(sum(d.amount for d in self.doses))

    @cached_property
    def routes(self) -> tuple[str, ...]:
        """Routes used, in order of first use."""
        return tuple(dict.fromkeys(d.route for d in self.doses))

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start times, amounts and durations of the doses as arrays."""
        return (np.array([d.time for d in self.doses]), np.array([d.amount for d in self.doses]),
                np.array([d.duration for d in self.doses]))

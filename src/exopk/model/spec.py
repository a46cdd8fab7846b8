"""The domain objects of a compartment model: compartments, transfers, routes, outputs, parameters.

A :class:`Model` is immutable; :meth:`Model.replace` returns a changed copy. Models are read from
TOML files by :func:`exopk.model.load_model` or built directly in Python:

>>> from exopk.model import Model, Compartment, Transfer, Route, Output, Parameter, Prior
>>> model = Model(
...     name="one_compartment",
...     compartments=(Compartment("plasma", kind="plasma", volume="V"),
...                   Compartment("eliminated", kind="sink")),
...     transfers=(Transfer("plasma", "eliminated", clearance="CL"),),
...     routes=(Route("iv", {"plasma": "1"}),),
...     outputs=(Output("plasma_conc", kind="concentration", compartments=("plasma",)),),
...     parameters=(Parameter("CL", 0.5, "mL/min", prior=Prior("lognormal", {"median": 0.5, "sigma": 1})),
...                 Parameter("V", 2.0, "mL", prior=Prior("lognormal", {"median": 2.0, "sigma": 0.3}))),
... )
>>> model.parameter_names
('CL', 'V')
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

from exopk.errors import ModelFileError
from exopk.model.expressions import parse_expression
from exopk.model.frozen import FrozenMapping
from exopk.model.priors import Prior
from exopk.model.quantities import ModelQuantities

__all__ = ["Parameter", "Compartment", "Transfer", "Route", "Output", "SpeciesSpec",
           "EndogenousInput", "PlausibilityBound", "Model",
           "COMPARTMENT_KINDS", "OUTPUT_KINDS", "OUTPUT_SIGNALS"]

COMPARTMENT_KINDS = ("plasma", "blood", "tissue", "depot", "sink", "free_label")
OUTPUT_KINDS = ("amount", "percent_id", "percent_id_per_g", "concentration")
OUTPUT_SIGNALS = ("vesicle", "label")


@dataclass(frozen=True)
class Parameter:
    """A named model parameter.

    Attributes
    ----------
    name : str
        Symbol used in expressions.
    value : float
        Nominal value, used when a simulation does not set the parameter.
    unit : str
        Unit, for example ``1/min`` or ``mL/min``.
    lower, upper : float
        Bounds of the allowed range (inclusive); simulations outside them raise.
    prior : Prior, optional
        Prior distribution; required for parameters that are estimated.
    description : str
        What the parameter means.
    fixed : bool
        A switch or known constant (for example ``macrophage_depletion``) that is set, not
        estimated.

    Examples
    --------
    >>> from exopk.model import Parameter, Prior
    >>> cl = Parameter("CL", 0.5, "mL/min", lower=1e-6,
    ...                prior=Prior("lognormal", {"median": 0.5, "sigma": 1.0}))
    >>> cl.value, cl.unit, cl.fixed
    (0.5, 'mL/min', False)

    A parameter that is estimated needs a prior; one that is set needs ``fixed=True``:

    >>> Parameter("switch", 0.0, fixed=True).prior is None
    True
    >>> Parameter("CL", 0.5, "mL/min")
    Traceback (most recent call last):
    ...
    exopk.errors.ModelFileError: key 'parameters.CL.prior': an estimable parameter needs a prior (or set fixed = true)
    """

    name: str
    value: float
    unit: str = ""
    lower: float = 0.0
    upper: float = math.inf
    prior: Prior | None = None
    description: str = ""
    fixed: bool = False

    def __post_init__(self):
        where = f"parameters.{self.name}"
        if not self.name.isidentifier():
            raise ModelFileError(f"parameter name '{self.name}' is not a valid symbol", key=where)
        for attr in ("value", "lower", "upper"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ModelFileError(f"{attr} must be a number, got {v!r}", key=f"{where}.{attr}")
        if not self.lower <= self.value <= self.upper:
            raise ModelFileError(f"value {self.value} outside bounds [{self.lower}, {self.upper}]",
                                 key=f"{where}.value")
        if not self.fixed and self.prior is None:
            raise ModelFileError("an estimable parameter needs a prior (or set fixed = true)",
                                 key=f"{where}.prior")


@dataclass(frozen=True)
class Compartment:
    """A compartment.

    Attributes
    ----------
    name : str
    kind : str
        ``plasma`` or ``blood`` (the circulation; at most one per model), ``tissue``, ``depot``
        (a site doses land in, such as the nasal cavity), ``sink`` (eliminated material; no
        outflow) or ``free_label`` (label released from degraded vesicles; see ``label_of``).
    volume : str, optional
        Expression for the volume in mL. Defaults: ``plasma_volume_ml`` for plasma,
        ``blood_volume_ml`` for blood, ``volume_ml_<organ>`` for a tissue with an organ.
    organ : str, optional
        Organ of the species preset this compartment stands for (mass, residual blood).
    label_of : str, optional
        For ``free_label`` compartments: the vesicle compartment whose label signal includes it.
    description : str

    Examples
    --------
    The volume defaults to the physiology symbol of the compartment's kind or organ:

    >>> from exopk.model import Compartment
    >>> Compartment("plasma", kind="plasma").default_volume
    'plasma_volume_ml'
    >>> Compartment("liver", organ="liver").default_volume
    'volume_ml_liver'
    >>> Compartment("central", kind="plasma", volume="V").default_volume
    'V'
    """

    name: str
    kind: str = "tissue"
    volume: str | None = None
    organ: str | None = None
    label_of: str | None = None
    description: str = ""

    @property
    def default_volume(self) -> str | None:
        if self.volume is not None:
            return str(self.volume)
        if self.kind == "plasma":
            return "plasma_volume_ml"
        if self.kind == "blood":
            return "blood_volume_ml"
        if self.organ is not None:
            return f"volume_ml_{self.organ}"
        return None


@dataclass(frozen=True)
class Transfer:
    """Movement of material from one compartment to another.

    Exactly one of ``rate`` (first order, 1/time), ``clearance`` (mL/time, divided by the
    source volume) or ``vmax`` with ``km`` (saturable: ``vmax * c / (km + c)`` amount/time with
    ``c`` the source concentration, amount/mL) is given; each is an expression.

    Examples
    --------
    >>> from exopk.model import Transfer
    >>> Transfer("plasma", "eliminated", clearance="CL").kind
    'clearance'
    >>> Transfer("plasma", "liver", rate="k_uptake_liver").kind
    'rate'
    >>> Transfer("plasma", "liver", vmax="Vmax", km="Km").kind
    'michaelis_menten'
    """

    source: str
    target: str
    rate: str | None = None
    clearance: str | None = None
    vmax: str | None = None
    km: str | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        given = [k for k in ("rate", "clearance", "vmax") if getattr(self, k) is not None]
        if len(given) != 1 or (given == ["vmax"]) != (self.km is not None):
            raise ModelFileError(
                f"transfer {self.source} -> {self.target} needs exactly one of rate, clearance "
                "or vmax+km")
        return {"rate": "rate", "clearance": "clearance", "vmax": "michaelis_menten"}[given[0]]


@dataclass(frozen=True)
class Route:
    """Where a dose given by this route lands: compartment -> fraction expression.

    The fractions must add up to one for every parameter set (checked when simulating).

    Examples
    --------
    In ``m5_intranasal_olfactory`` an intranasal dose is split between the olfactory and the
    respiratory epithelium by the parameter ``f_olfactory``:

    >>> import exopk
    >>> model = exopk.load_model(exopk.model_path("m5_intranasal_olfactory"))
    >>> dict(model.route("intranasal").targets)
    {'nasal_olfactory': 'f_olfactory', 'nasal_respiratory': '1 - f_olfactory'}
    >>> ds = exopk.simulate(model, {"f_olfactory": 0.25}, times=[0],
    ...                     regimen=exopk.Regimen.bolus("intranasal", 100))
    >>> ds["amount"].sel(time=0, compartment=["nasal_olfactory", "nasal_respiratory"]).values
    array([25., 75.])
    """

    name: str
    targets: Mapping[str, str]
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "targets", FrozenMapping({k: str(v) for k, v in self.targets.items()}))


@dataclass(frozen=True)
class Output:
    """An observable.

    Attributes
    ----------
    name : str
    kind : str
        ``amount`` (amount unit), ``percent_id`` (% of the regimen's total dose),
        ``percent_id_per_g`` (% of dose per g of tissue, organ mass from the species preset or
        ``mass_g``), ``concentration`` (amount per mL, volume of the first compartment or
        ``volume``).
    compartments : tuple of str
        Compartments summed.
    signal : str
        ``vesicle`` (intact vesicles) or ``label`` (also the free label released from them, held
        in the ``free_label`` compartments whose ``label_of`` is one of ``compartments``).
    residual_blood : bool
        Add the circulating vesicles in the organ's residual blood (share of organ volume from the
        preset, ``residual_blood_<organ>``), as in a tissue sample taken without perfusion.
    volume, mass_g : str, optional
        Expressions overriding the default volume (mL) or mass (g).
    include_endogenous : bool
        Add the steady-state amount of endogenously secreted vesicles (model's ``endogenous``
        input); for ``amount`` and ``concentration`` outputs.
    description : str

    Examples
    --------
    In the one-compartment model a concentration is the amount over ``V_plasma`` and %ID is
    the amount over the dose; after a bolus of 100 with k = CL / V = 0.25/min, at 4 min:

    >>> import exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> model.outputs[1]
    Output(name='plasma_concentration', kind='concentration', compartments=('plasma',), ...)
    >>> ds = exopk.simulate(model, {"CL": 0.5, "V_plasma": 2.0}, times=[4])
    >>> value = ds["value"].sel(time=4)
    >>> [round(float(value.sel(output=o)), 4) for o in ("plasma_percent_id", "plasma_concentration")]
    [36.7879, 18.394]

    ``percent_id_per_g`` divides by the organ mass of the species preset (a 25-g mouse's
    liver weighs 1.375 g in ``mouse_brown1997``):

    >>> m2 = exopk.load_model(exopk.model_path("m2_mps"))
    >>> liver = exopk.simulate(m2, times=[60])["value"].sel(time=60)
    >>> ratio = liver.sel(output="liver_percent_id") / liver.sel(output="liver_percent_id_per_g")
    >>> round(float(ratio), 6)
    1.375
    """

    name: str
    kind: str = "percent_id"
    compartments: tuple[str, ...] = ()
    signal: str = "vesicle"
    residual_blood: bool = False
    volume: str | None = None
    mass_g: str | None = None
    include_endogenous: bool = False
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "compartments", tuple(self.compartments))


@dataclass(frozen=True)
class EndogenousInput:
    """Constant secretion of vesicles by the body itself (amount per time unit).

    The secretion has gone on long before the first dose, so the draining compartments start at
    the steady state it sustains. Endogenous material is kept apart from dosed material: it is
    not in ``amount`` or in the mass balance, and enters only the outputs that ask for it.

    Examples
    --------
    The one-compartment model secretes into plasma at ``secretion_rate`` (0 unless set); the
    steady-state concentration it sustains is ``secretion_rate / CL`` (amount per min over mL
    per min), here 1 / 0.5 = 2 amount units per mL on top of the dosed vesicles:

    >>> import exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> model.endogenous
    EndogenousInput(compartment='plasma', rate='secretion_rate', description=...)
    >>> ds = exopk.simulate(model, {"CL": 0.5, "V_plasma": 2.0, "secretion_rate": 1.0}, times=[4])
    >>> value = ds["value"].sel(time=4)
    >>> total, dosed = (value.sel(output=o) for o in ("plasma_total_concentration",
    ...                                                "plasma_concentration"))
    >>> round(float(total - dosed), 9)
    2.0
    """

    compartment: str
    rate: str
    description: str = ""


@dataclass(frozen=True)
class PlausibilityBound:
    """A bound that the posterior predictive of a model output must respect.

    After a bolus of ``dose`` amount units by ``route`` (the model's amount unit), the
    ``quantile`` of ``output`` at ``time`` (the model's time unit) over the posterior draws must
    lie within ``[lower, upper]``. Every fit checks its model's bounds
    (:mod:`exopk.inference.plausibility`).

    Attributes
    ----------
    name : str
    output, route : str
    time : float
        Time after the dose, model time unit (positive).
    upper, lower : float
        In the output's unit; at least one is given (``inf`` / ``-inf`` when absent).
    quantile : float
        Which posterior quantile the bound applies to (0.5: the median).
    dose : float
    source : str
        Where the bound comes from (a citation or DOI; required).
    description : str

    Examples
    --------
    >>> import exopk
    >>> bound = exopk.load_model(exopk.model_path("m4_brain")).plausibility[0]
    >>> bound.name, bound.output, bound.route, bound.time, bound.quantile, bound.upper
    ('brain_iv_1h_median', 'brain_percent_id', 'iv', 60.0, 0.5, 1.0)
    """

    name: str
    output: str
    route: str
    time: float
    upper: float = math.inf
    lower: float = -math.inf
    quantile: float = 0.5
    dose: float = 1.0
    source: str = ""
    description: str = ""


@dataclass(frozen=True)
class SpeciesSpec:
    """Which species preset supplies physiology symbols, and at what body weight (kg).

    Examples
    --------
    >>> import exopk
    >>> species = exopk.load_model(exopk.model_path("m2_mps")).species
    >>> species.preset, species.body_weight_kg
    ('mouse_brown1997', 0.025)
    """

    preset: str
    body_weight_kg: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Model:
    """A compartment model. See the module docstring for an example.

    Attributes
    ----------
    name, description : str
    compartments, transfers, routes, outputs, parameters : tuples of the domain objects
    species : SpeciesSpec, optional
        Preset for physiology symbols (``volume_ml_liver``, ``blood_volume_ml``, ...).
    endogenous : EndogenousInput, optional
        Constant endogenous secretion of vesicles.
    plausibility : tuple of PlausibilityBound
        Bounds on the posterior predictive of outputs that every fit checks.
    time_unit : str
        Unit of simulation times and of every rate (default ``min``).
    amount_unit : str
        Unit of dose amounts (only matters for saturable transfers and concentrations).
    source_file : str, optional
        File the model was read from, for error messages and provenance.
    derived : dict
        Objects that later layers derive from this model object and keep with it, by type (the
        engine's compiled form, see :func:`exopk.engine.compile_model`); not part of equality or
        hashing, and not copied by :meth:`replace`.

    Examples
    --------
    Models are read from model files (:func:`exopk.load_model`) or built in Python (the module
    docstring builds one) and simulated by :func:`exopk.simulate`:

    >>> import numpy as np, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> model.compartment_names, model.free_parameter_names, model.is_linear
    (('plasma', 'eliminated'), ('CL', 'V_plasma'), True)
    >>> model.parameter("CL").unit
    'mL/min'

    A one-compartment IV bolus decays as ``exp(-CL t / V)``:

    >>> ds = exopk.simulate(model, {"CL": 0.2, "V_plasma": 1.0}, times=[0, 5, 10])
    >>> ds["value"].sel(output="plasma_percent_id").values.round(4)
    array([100.    ,  36.7879,  13.5335])

    :meth:`replace` gives a changed copy, for example another species preset:

    >>> rat = model.replace(species=exopk.model.SpeciesSpec("rat_brown1997"))
    >>> rat.species.preset, model.species is None
    ('rat_brown1997', True)
    """

    name: str
    compartments: tuple[Compartment, ...]
    transfers: tuple[Transfer, ...]
    routes: tuple[Route, ...]
    outputs: tuple[Output, ...]
    parameters: tuple[Parameter, ...]
    species: SpeciesSpec | None = None
    endogenous: EndogenousInput | None = None
    description: str = ""
    time_unit: str = "min"
    plausibility: tuple[PlausibilityBound, ...] = ()
    amount_unit: str = "dose"
    source_file: str | None = field(default=None, compare=False)
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        for attr in ("compartments", "transfers", "routes", "outputs", "parameters",
                     "plausibility"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        self._validate()

    def _validate_bound(self, b: PlausibilityBound) -> None:
        key = f"plausibility.{b.name}"
        if b.output not in self.output_names:
            raise self._error(f"unknown output '{b.output}'; known: {', '.join(self.output_names)}",
                              f"{key}.output")
        if b.route not in (r.name for r in self.routes):
            raise self._error(f"unknown route '{b.route}'; known: "
                              f"{', '.join(r.name for r in self.routes)}", f"{key}.route")
        if not (math.isfinite(b.time) and b.time > 0):
            raise self._error(f"time must be a positive number, got {b.time!r}", f"{key}.time")
        if not (math.isfinite(b.dose) and b.dose > 0):
            raise self._error(f"dose must be a positive number, got {b.dose!r}", f"{key}.dose")
        if not 0 < b.quantile < 1:
            raise self._error(f"quantile must lie between 0 and 1, got {b.quantile!r}",
                              f"{key}.quantile")
        if b.upper == math.inf and b.lower == -math.inf:
            raise self._error("a bound needs upper, lower or both", key)
        if not b.lower < b.upper:
            raise self._error(f"lower ({b.lower:g}) must be below upper ({b.upper:g})", key)
        if not b.source.strip():
            raise self._error("a plausibility bound needs its source", f"{key}.source")

    def _error(self, message: str, key: str):
        return ModelFileError(message, file=self.source_file, key=key)

    def _validate(self):
        names = [c.name for c in self.compartments]
        _unique(names, "compartments", self)
        _unique([p.name for p in self.parameters], "parameters", self)
        _unique([r.name for r in self.routes], "routes", self)
        _unique([o.name for o in self.outputs], "outputs", self)
        known = set(names)
        kinds = {c.name: c.kind for c in self.compartments}
        vascular = [c.name for c in self.compartments if c.kind in ("plasma", "blood")]
        if len(vascular) > 1:
            raise self._error(f"more than one circulation compartment: {', '.join(vascular)}",
                              "compartments")
        for c in self.compartments:
            key = f"compartments.{c.name}"
            if c.kind not in COMPARTMENT_KINDS:
                raise self._error(f"unknown kind '{c.kind}'; known: {', '.join(COMPARTMENT_KINDS)}",
                                  f"{key}.kind")
            if (c.kind == "free_label") != (c.label_of is not None):
                raise self._error("label_of is given for, and only for, free_label compartments",
                                  f"{key}.label_of")
            if c.label_of is not None and c.label_of not in known:
                raise self._error(f"label_of names unknown compartment '{c.label_of}'",
                                  f"{key}.label_of")
            if c.volume is not None:
                parse_expression(c.volume, where=f"{key}.volume")
        for i, t in enumerate(self.transfers):
            key = f"transfers[{i}]"
            for end, name in (("from", t.source), ("to", t.target)):
                if name not in known:
                    raise self._error(f"unknown compartment '{name}'; known: {', '.join(names)}",
                                      f"{key}.{end}")
            if t.source == t.target:
                raise self._error("a transfer must go between two different compartments", key)
            if kinds[t.source] == "sink":
                raise self._error(f"'{t.source}' is a sink; nothing leaves a sink", f"{key}.from")
            try:
                kind = t.kind
            except ModelFileError as exc:
                raise self._error(str(exc), key) from None
            for attr in ("rate", "clearance", "vmax", "km"):
                if getattr(t, attr) is not None:
                    parse_expression(getattr(t, attr), where=f"{key}.{attr}")
            if kind in ("clearance", "michaelis_menten") and \
                    self.compartment(t.source).default_volume is None:
                raise self._error(f"{kind} transfer needs a volume for '{t.source}'", key)
        for r in self.routes:
            if not r.targets:
                raise self._error("a route needs at least one target compartment", f"routes.{r.name}")
            for target, fraction in r.targets.items():
                if target not in known:
                    raise self._error(f"unknown compartment '{target}'", f"routes.{r.name}.{target}")
                if kinds[target] == "sink":
                    raise self._error(f"a dose cannot land in sink '{target}'",
                                      f"routes.{r.name}.{target}")
                parse_expression(fraction, where=f"routes.{r.name}.{target}")
        if self.endogenous is not None:
            e = self.endogenous
            if e.compartment not in known or kinds[e.compartment] == "sink":
                raise self._error(f"'{e.compartment}' is not a compartment secretion can enter",
                                  "endogenous.compartment")
            parse_expression(e.rate, where="endogenous.rate")
            if not self.is_linear:
                raise self._error("endogenous secretion needs a linear model (no vmax/km "
                                  "transfers): its steady state is computed exactly", "endogenous")
        for o in self.outputs:
            key = f"outputs.{o.name}"
            if o.kind not in OUTPUT_KINDS:
                raise self._error(f"unknown kind '{o.kind}'; known: {', '.join(OUTPUT_KINDS)}",
                                  f"{key}.kind")
            if o.signal not in OUTPUT_SIGNALS:
                raise self._error(f"unknown signal '{o.signal}'; known: {', '.join(OUTPUT_SIGNALS)}",
                                  f"{key}.signal")
            if not o.compartments:
                raise self._error("an output needs at least one compartment", f"{key}.compartments")
            for name in o.compartments:
                if name not in known:
                    raise self._error(f"unknown compartment '{name}'; known: {', '.join(names)}",
                                      f"{key}.compartments")
            if o.kind == "concentration" and o.volume is None and \
                    self.compartment(o.compartments[0]).default_volume is None:
                raise self._error("concentration output needs a volume", f"{key}.volume")
            if o.kind == "percent_id_per_g" and o.mass_g is None and not self._organs_of(o):
                raise self._error("percent_id_per_g output needs an organ or mass_g", f"{key}.mass_g")
            if o.residual_blood and (not vascular or not self._organs_of(o)):
                raise self._error("residual_blood needs a circulation compartment and tissue "
                                  "compartments with an organ", f"{key}.residual_blood")
            if o.include_endogenous and (self.endogenous is None or
                                         o.kind not in ("amount", "concentration")):
                raise self._error("include_endogenous needs an [endogenous] input and an amount "
                                  "or concentration output", f"{key}.include_endogenous")
            for attr in ("volume", "mass_g"):
                if getattr(o, attr) is not None:
                    parse_expression(getattr(o, attr), where=f"{key}.{attr}")
        _unique([b.name for b in self.plausibility], "plausibility", self)
        for b in self.plausibility:
            self._validate_bound(b)

    def _organs_of(self, output: Output) -> list[str]:
        return [self.compartment(n).organ for n in output.compartments
                if self.compartment(n).organ is not None]

    # -- lookup -----------------------------------------------------------------------------
    def compartment(self, name: str) -> Compartment:
        """The compartment called ``name``."""
        for c in self.compartments:
            if c.name == name:
                return c
        raise self._error(f"unknown compartment '{name}'; known: "
                          f"{', '.join(c.name for c in self.compartments)}", "compartments")

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise self._error(f"unknown parameter '{name}'; known: {', '.join(self.parameter_names)}",
                          "parameters")

    def route(self, name: str) -> Route:
        """The route called ``name``."""
        for r in self.routes:
            if r.name == name:
                return r
        raise self._error(f"unknown route '{name}'; known: {', '.join(r.name for r in self.routes)}",
                          "routes")

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def free_parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters that are estimated (not ``fixed``)."""
        return tuple(p.name for p in self.parameters if not p.fixed)

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def compartment_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.compartments)

    @cached_property
    def is_linear(self) -> bool:
        """True when no transfer is saturable."""
        return all(t.kind != "michaelis_menten" for t in self.transfers)

    def replace(self, **changes) -> "Model":
        """A copy with some fields replaced (``parameters=...``, ``species=...``)."""
        return dataclasses.replace(self, **changes)

    def with_parameter_values(self, **values: float) -> "Model":
        """A copy whose nominal parameter values are changed."""
        unknown = set(values) - set(self.parameter_names)
        if unknown:
            raise self._error(f"unknown parameter(s) {', '.join(sorted(unknown))}", "parameters")
        return self.replace(parameters=tuple(
            dataclasses.replace(p, value=float(values[p.name])) if p.name in values else p
            for p in self.parameters))

    @cached_property
    def quantities(self) -> ModelQuantities:
        """The model's parameter-dependent quantities as one expression set
        (:class:`~exopk.model.quantities.ModelQuantities`); physiology symbols resolved."""
        return ModelQuantities(self)


def _unique(names, what, model):
    seen = set()
    for name in names:
        if name in seen:
            raise ModelFileError(f"duplicate name '{name}'", file=model.source_file, key=what)
        seen.add(name)

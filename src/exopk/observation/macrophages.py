"""Which share of an organ's content macrophages hold: uptake attributed through the depletion
switch.

Models of the library write macrophage uptake as the part of a transfer that macrophage
depletion removes: ``rate = k (1 - f macrophage_depletion)``. The macrophage part of transfer
``j`` is therefore ``m_j = r_j - r_j|depleted`` (its rate minus its rate with the switch
``MACROPHAGE_SWITCH`` set to 1), the share ``f_j = m_j / r_j`` of what it moves. Vesicles a
macrophage took up stay attributed to macrophages while they move inside the organ (degradation
to free label, internalisation), and lose the attribution when they leave it (release to blood).

Inside the organ (the compartments an output reads, without the vascular compartment of its
residual blood), a compartment whose inflows all carry the same macrophage share ``sigma``
holds that share of its content at every time, since its outflows take attributed and other
content alike. An inflow from compartment ``s`` by transfer ``j`` carries
``sigma_j = f_j + (1 - f_j) s_s`` (``s_s = 0`` outside the organ). Compartments are resolved in
flow order; inflows whose rate is 0 carry nothing. A compartment fed by inflows of different
shares (whose share then changes with time), a cycle inside the organ, or a dose landing in an
attributed compartment raise :class:`~exopk.errors.SimulationError`.

This is the share a cell fractionation measures in animals of the record's condition (normal:
switch 0), as the packaged record states it (``willekens2005``: Kupffer cells hold 92 % of the
liver's uptake 30 min after an IV dose in normal rats). It differs from the drop of an organ's
uptake after depletion, ``1 - y_depleted / y_competent`` at the same time: with macrophages
depleted, vesicles stay longer in blood and the remaining routes take up more, so that drop is
smaller than the share. That reading would compare two observations (organ values under the
two conditions), which the likelihood's conditions already predict.
"""

from __future__ import annotations

import re

import numpy as np

from exopk.errors import SimulationError

__all__ = ["MACROPHAGE_SWITCH", "depends_on_switch", "macrophage_shares", "organ_states"]

MACROPHAGE_SWITCH = "macrophage_depletion"
"""The parameter that removes macrophage uptake (0 normal, 1 macrophages depleted)."""

_SHARE_TOLERANCE = 1e-9


def organ_states(compiled, output: str) -> np.ndarray:
    """Indices of the compartments ``output`` reads, without vascular (residual blood) ones."""
    terms = compiled.output_term_table
    o = compiled.model.output_names.index(output)
    vascular = {i for i, c in enumerate(compiled.model.compartments)
                if c.kind in ("plasma", "blood")}
    return np.array(sorted(set(terms.states[terms.output_of_term == o].tolist()) - vascular),
                    dtype=int)


def depends_on_switch(model, compartments) -> bool:
    """Whether a transfer into one of ``compartments`` names :data:`MACROPHAGE_SWITCH`."""
    word = re.compile(rf"\b{MACROPHAGE_SWITCH}\b")
    return any(t.target in compartments and any(word.search(text or "")
                                                for text in (t.rate, t.clearance, t.vmax))
               for t in model.transfers)


def macrophage_shares(compiled, theta, rates, rate_jacobian, dose, output, gradients):
    """Macrophage share of the content of every compartment of an organ output.

    Parameters
    ----------
    compiled : CompiledModel
    theta : ndarray, shape (batch, n_parameters)
        The parameter sets (their switch as the animals' condition sets it).
    rates, rate_jacobian : ndarray
        First-order rates at ``theta`` and their derivatives (the Jacobian may have no columns).
    dose : ndarray, shape (batch, n_states)
        The bolus.
    output : str
    gradients : bool

    Returns
    -------
    share : ndarray, shape (batch, n_states)
        0 outside the organ.
    d_share : ndarray, shape (batch, n_states, n_parameters of ``rate_jacobian``)
    """
    if MACROPHAGE_SWITCH not in compiled.parameter_index:
        raise SimulationError(f"model '{compiled.model.name}' has no parameter "
                              f"'{MACROPHAGE_SWITCH}': no uptake is attributed to macrophages")
    switch = compiled.parameter_index[MACROPHAGE_SWITCH]
    depleted = np.array(theta, dtype=float, copy=True)
    depleted[:, switch] = 1.0
    values, jacobian = compiled.evaluate_expressions(depleted, derivatives=gradients)
    rates_depleted = values[:, compiled.rate_rows]
    d_depleted = np.zeros(rate_jacobian.shape)
    if gradients:   # the depleted rates do not move with the switch: it is set to 1 there
        d_depleted = jacobian[:, compiled.rate_rows, :].copy()
        d_depleted[:, :, switch] = 0.0
    n_parameters = rate_jacobian.shape[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(rates > 0, 1.0 - rates_depleted / rates, 0.0)
        df = np.where((rates > 0)[..., None],
                      -(d_depleted * rates[..., None] - rates_depleted[..., None] * rate_jacobian)
                      / (rates**2)[..., None], 0.0)
    organ = set(organ_states(compiled, output).tolist())
    sources, targets = compiled.linear_sources, compiled.linear_targets
    share = np.zeros(dose.shape)
    d_share = np.zeros(dose.shape + (n_parameters,))
    pending = set(organ)
    while pending:
        ready = [c for c in sorted(pending) if not any(
            s in pending and s != c for s in sources[targets == c])]
        if not ready:
            raise SimulationError(f"output '{output}': its compartments exchange vesicles in a "
                                  "cycle, so their macrophage shares change with time")
        for c in ready:
            _resolve(compiled, c, organ, f, df, rates, share, d_share, output)
            pending.discard(c)
    attributed = np.flatnonzero(np.any(share != 0, axis=0))
    if np.any(dose[:, attributed] != 0):
        raise SimulationError(f"output '{output}': the dose lands in a compartment whose content "
                              "is partly attributed to macrophages, so its share changes with time")
    return share, d_share


def _resolve(compiled, c, organ, f, df, rates, share, d_share, output):
    """The share of compartment ``c`` from its inflows (in place)."""
    inflows = np.flatnonzero(compiled.linear_targets == c)
    if any(compiled.linear_sources[j] == c for j in inflows):
        raise SimulationError(f"output '{output}': compartment "
                              f"'{compiled.state_names[c]}' feeds itself")
    carried, d_carried = [], []
    for j in inflows:
        s = compiled.linear_sources[j]
        s_share = share[:, s] if s in organ else 0.0
        d_s_share = d_share[:, s] if s in organ else 0.0
        carried.append(f[:, j] + (1 - f[:, j]) * s_share)
        d_carried.append(df[:, j] * (1 - s_share)[..., None] if s in organ else df[:, j])
        if s in organ:
            d_carried[-1] = d_carried[-1] + (1 - f[:, j])[:, None] * d_s_share
    if not carried:
        return
    sigma = np.array(carried).T                                          # (batch, inflows)
    flowing = rates[:, inflows] > 0
    low = np.where(flowing, sigma, np.inf).min(axis=1)
    high = np.where(flowing, sigma, -np.inf).max(axis=1)
    if np.any(flowing.any(axis=1) & (high - low > _SHARE_TOLERANCE)):
        raise SimulationError(f"output '{output}': compartment '{compiled.state_names[c]}' is fed "
                              "by inflows with different macrophage shares, so its share "
                              "changes with time")
    first = np.argmax(flowing, axis=1)                                   # a flowing inflow
    members = np.arange(sigma.shape[0])
    has = flowing.any(axis=1)
    share[:, c] = np.where(has, sigma[members, first], 0.0)
    d_sigma = np.stack(d_carried, axis=1)                                 # (batch, inflows, P)
    d_share[:, c] = np.where(has[:, None], d_sigma[members, first], 0.0)

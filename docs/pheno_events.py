"""Turn pharmpy's pheno.dta into a NONMEM-style event table that exopk reads.

pheno.dta is whitespace-separated with the columns ``ID TIME AMT WGT APGR DV FA1 FA2``
(pheno.mod's ``$INPUT``), TIME in h, AMT in mg, DV in mg/L, no EVID, CMT or MDV: a row with
AMT > 0 is an IV dose into compartment 1 (ADVAN1), the others are observations. The event table
written here adds ``EVID``, ``MDV`` and ``CMT`` and divides every dose by the infant's weight
(mg/kg), which is NONMEM's weight covariate on CL and V exactly (see
``models/pheno_one_compartment.toml``).
"""

import csv
import sys

import numpy as np


def pheno_events(dta_path, csv_path, *, per_kg: bool = True) -> int:
    """Write the event table; returns the number of observation rows."""
    with open(dta_path) as handle:
        header = handle.readline().split()
        rows = np.array([line.split() for line in handle if line.strip()], dtype=float)
    column = {name: rows[:, header.index(name)] for name in header}
    amount = column["AMT"] / column["WGT"] if per_kg else column["AMT"]
    dose = column["AMT"] > 0
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "TIME", "AMT", "CMT", "EVID", "MDV", "DV", "WGT", "APGR"])
        for i in range(rows.shape[0]):
            writer.writerow([f"{column['ID'][i]:g}", f"{column['TIME'][i]:g}",
                             f"{amount[i]:.10g}" if dose[i] else "0", 1, int(dose[i]),
                             int(dose[i]), "." if dose[i] else f"{column['DV'][i]:g}",
                             f"{column['WGT'][i]:g}", f"{column['APGR'][i]:g}"])
    return int((~dose).sum())


if __name__ == "__main__":
    print(pheno_events(sys.argv[1], sys.argv[2]), "observations")

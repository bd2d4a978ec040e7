"""Global warming potentials (GWP100) for converting per-gas emissions to CO2e.

The default table, installed as version 1 of every deployment's EmissionsMRV contract, is IPCC AR6 GWP100:

    Forster, P., T. Storelvmo, et al., 2021: The Earth's Energy Budget, Climate Feedbacks, and Climate
    Sensitivity. In: Climate Change 2021: The Physical Science Basis. Contribution of Working Group I to the
    Sixth Assessment Report of the IPCC, Chapter 7, Table 7.15 and Supplementary Material Table 7.SM.7.

as compiled for inventories in the GHG Protocol's "IPCC Global Warming Potential Values" (version 2.0,
August 2024), which splits methane into fossil (29.8) and non-fossil (27.0) sources. Values are stored on
chain in thousandths (29.8 -> 29800) and CO2e is computed on chain as sum(grams x GWP) / 1000, rounded
down once (less than one gram).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from eth_utils import keccak


@dataclass(frozen=True)
class GwpTable:
    name: str
    gases: tuple[str, ...]
    gwp: tuple[Decimal, ...]  # GWP100, e.g. Decimal("29.8")
    source: str

    @property
    def gwp_milli(self) -> list[int]:
        """The values as the contract stores them: thousandths, exactly (more decimals is an error)."""
        out = []
        for gas, value in zip(self.gases, self.gwp):
            milli = Decimal(value) * 1000
            if milli != milli.to_integral_value() or milli < 0 or milli >= 2**32:
                raise ValueError(f"GWP of {gas} ({value}) must have at most 3 decimals and fit in uint32 thousandths")
            out.append(int(milli))
        return out

    @property
    def source_hash(self) -> bytes:
        """keccak256 of the citation: what the contract records as the table's source."""
        return keccak(text=self.source)

    def index(self, gas: str) -> int:
        """The gas's position; names match case-insensitively (readings CSVs upper-case gases: CH4_FOSSIL)."""
        try:
            return self.gases.index(gas)
        except ValueError:
            folded = [g.upper() for g in self.gases]
            if gas.upper() in folded:
                return folded.index(gas.upper())
            raise KeyError(f"gas {gas!r} is not in GWP table {self.name!r}: {', '.join(self.gases)}") from None

    def co2e(self, quantities: dict[str, int] | list[int]) -> int:
        """CO2e in grams for per-gas grams, exactly as the contract computes it."""
        vector = self.vector(quantities) if isinstance(quantities, dict) else list(quantities)
        return sum(q * g for q, g in zip(vector, self.gwp_milli)) // 1000

    def vector(self, quantities: dict[str, int]) -> list[int]:
        """Per-gas quantities by name -> the contract's vector (one entry per gas of the table, 0 if absent)."""
        vector = [0] * len(self.gases)
        for gas, amount in quantities.items():
            vector[self.index(gas)] += amount
        return vector


AR6_SOURCE = ("IPCC AR6 WG1 Chapter 7 (Forster et al. 2021), Table 7.15 and Table 7.SM.7, GWP100; "
              "GHG Protocol 'IPCC Global Warming Potential Values', version 2.0, August 2024")

AR6_GWP100 = GwpTable(
    name="IPCC AR6 GWP100",
    gases=("CO2", "CH4_fossil", "CH4_non_fossil", "N2O", "HFC-23", "HFC-32", "HFC-134a", "CF4", "C2F6",
           "SF6", "NF3"),
    gwp=tuple(Decimal(v) for v in ("1", "29.8", "27.0", "273", "14600", "771", "1530", "7380", "12400",
                                   "25200", "17400")),
    source=AR6_SOURCE,
)

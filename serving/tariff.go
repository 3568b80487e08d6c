package serving

import "github.com/gridlake/gridlake/agg"

// Tariff prices energy (config site.tariff): answers carry what their
// energy and waste cost and emitted beside the Wh figures.
type Tariff struct {
	Currency    string  `json:"currency"`
	PricePerKWh float64 `json:"price_per_kwh"`
	CO2GPerKWh  float64 `json:"co2_g_per_kwh"`
}

// DefaultTariff is config.Default's tariff (the reference site in Seoul).
func DefaultTariff() Tariff { return Tariff{Currency: "KRW", PricePerKWh: 150, CO2GPerKWh: 459.4} }

// Impact is the cost and CO2 of some use under a tariff.
type Impact struct {
	EnergyCost float64 `json:"energy_cost"`
	WasteCost  float64 `json:"waste_cost"`
	EnergyCO2G float64 `json:"energy_co2_g"`
	WasteCO2G  float64 `json:"waste_co2_g"`
}

// impact prices energyWh and wasteWh.
func (t Tariff) impact(energyWh, wasteWh float64) Impact {
	return Impact{
		EnergyCost: energyWh / 1000 * t.PricePerKWh, WasteCost: wasteWh / 1000 * t.PricePerKWh,
		EnergyCO2G: energyWh / 1000 * t.CO2GPerKWh, WasteCO2G: wasteWh / 1000 * t.CO2GPerKWh,
	}
}

// usageOut is a use with its impact, as answers carry it.
type usageOut struct {
	agg.TypeUsage
	Impact
}

func (t Tariff) usage(u agg.TypeUsage) usageOut {
	return usageOut{TypeUsage: u, Impact: t.impact(u.EnergyWh, u.WasteWh)}
}

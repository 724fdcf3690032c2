package scheduler

// Nova's defaults for the Config fields (nova.conf [DEFAULT] and
// [filter_scheduler]).
const (
	defaultCPUAllocationRatio  = 4.0
	defaultRAMAllocationRatio  = 1.0
	defaultDiskAllocationRatio = 1.0
	defaultWeightMultiplier    = 1.0
	defaultHostSubsetSize      = 1
)

// DefaultConfig returns Nova's defaults: allocation ratios 4.0 (vCPU), 1.0
// (RAM) and 1.0 (disk), every weigher multiplier 1.0 (spread) and a host
// subset of 1 (always the best host).
func DefaultConfig() Config {
	return Config{
		CPUAllocationRatio:               defaultCPUAllocationRatio,
		RAMAllocationRatio:               defaultRAMAllocationRatio,
		DiskAllocationRatio:              defaultDiskAllocationRatio,
		RAMWeightMultiplier:              defaultWeightMultiplier,
		CPUWeightMultiplier:              defaultWeightMultiplier,
		DiskWeightMultiplier:             defaultWeightMultiplier,
		SoftAffinityWeightMultiplier:     defaultWeightMultiplier,
		SoftAntiAffinityWeightMultiplier: defaultWeightMultiplier,
		HostSubsetSize:                   defaultHostSubsetSize,
	}
}

// withDefaults fills the zero fields of c with DefaultConfig's. A zero
// multiplier therefore means "default", not "off": an operator who wants a
// weigher to stop counting sets a negligible multiplier such as 1e-9.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	orDefault(&c.CPUAllocationRatio, d.CPUAllocationRatio)
	orDefault(&c.RAMAllocationRatio, d.RAMAllocationRatio)
	orDefault(&c.DiskAllocationRatio, d.DiskAllocationRatio)
	orDefault(&c.RAMWeightMultiplier, d.RAMWeightMultiplier)
	orDefault(&c.CPUWeightMultiplier, d.CPUWeightMultiplier)
	orDefault(&c.DiskWeightMultiplier, d.DiskWeightMultiplier)
	orDefault(&c.SoftAffinityWeightMultiplier, d.SoftAffinityWeightMultiplier)
	orDefault(&c.SoftAntiAffinityWeightMultiplier, d.SoftAntiAffinityWeightMultiplier)
	if c.HostSubsetSize <= 0 {
		c.HostSubsetSize = d.HostSubsetSize
	}
	return c
}

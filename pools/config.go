package pools

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrConfig is wrapped by every error [NewPolicy] and [NewReserver] return
// for a configuration they cannot use. The message names the field.
var ErrConfig = errors.New("pools: invalid configuration")

// Defaults for the zero fields of a [PolicyConfig].
const (
	DefaultCriticalPercent  = 2.0 // of total memory
	DefaultLowPercent       = 5.0
	DefaultHighPercent      = 8.0
	DefaultSmoothing        = 0.3 // EWMA weight of the newest interval
	DefaultWeightMax        = 100
	DefaultWeightStep       = 10
	DefaultWeightBand       = 1.5
	DefaultWeightHoldTicks  = 3
	DefaultWarmupTicks      = 3
	DefaultThawTicks        = 3
	DefaultCompressOn       = 0.6
	DefaultCompressOff      = 0.2
	DefaultCompressOnTicks  = 3
	DefaultCompressOffTicks = 10
	DefaultStreamHitRatio   = 0.02
	DefaultStreamMinShare   = 0.05
	DefaultStreamProbeTicks = 60
)

// PolicyConfig configures a [Policy]. A nil *PolicyConfig, and every zero
// field, means the default named in the field's comment.
type PolicyConfig struct {
	// Watermarks are the host free-memory levels; zero means
	// DefaultCriticalPercent, DefaultLowPercent and DefaultHighPercent
	// of total memory.
	Watermarks Watermarks
	// DryRun marks every action as not to be executed ([Action.DryRun]).
	// The policy then tracks what it would have done instead of what the
	// snapshots show, so it does not repeat a freeze or a weight step
	// every tick.
	DryRun bool
	// Smoothing is the weight in (0, 1] of the newest interval in the
	// per-client moving averages of hit ratio and hit yield; default
	// DefaultSmoothing.
	Smoothing float64
	Weights   WeightPolicy
	Freeze    FreezePolicy
	Compress  CompressPolicy
	Reserve   ReserveConfig
}

// WeightMode says what a tmem client weight does in the hypervisor.
type WeightMode uint8

const (
	// WeightXen is Xen 4.0–4.12 as written (client_over_quota,
	// xen-tmem-abi.md §3.6): a client whose share of ephemeral pages is
	// below weight/total-weight evicts its own pages on put, so a higher
	// weight makes a client lose pages sooner, and weight 0 exempts it.
	// The policy therefore lowers the weight of clients it favours.
	WeightXen WeightMode = iota
	// WeightProportional is the evident intent of weights: a client's
	// entitlement is proportional to its weight. The policy raises the
	// weight of clients it favours.
	WeightProportional
)

// String returns "xen" or "proportional".
func (m WeightMode) String() string {
	switch m {
	case WeightXen:
		return "xen"
	case WeightProportional:
		return "proportional"
	}
	return fmt.Sprintf("WeightMode(%d)", uint8(m))
}

// WeightPolicy configures re-weighting toward clients whose ephemeral pages
// earn hits.
type WeightPolicy struct {
	// Disabled turns re-weighting off.
	Disabled bool
	// Mode is how the hypervisor reads weights; default WeightXen.
	Mode WeightMode
	// Min and Max bound the weights the policy sets, unless a client
	// carries its own bounds. Default 0 and DefaultWeightMax.
	Min, Max uint32
	// Step is the most one weight moves in one tick; default
	// DefaultWeightStep.
	Step uint32
	// Band is the dead band: a client is favoured when its hit yield is
	// at least Band times the host mean and disfavoured at 1/Band or
	// less. Must be > 1; default DefaultWeightBand.
	Band float64
	// HoldTicks is the least number of ticks between two changes of one
	// client's weight; default DefaultWeightHoldTicks.
	HoldTicks int
	// WarmupTicks is the number of intervals a client must have been
	// measured over before its weight is changed; default
	// DefaultWarmupTicks.
	WarmupTicks int
}

// FreezePolicy configures freezing below the critical watermark.
type FreezePolicy struct {
	// Disabled turns freezing off.
	Disabled bool
	// MaxPriority is the highest client priority that may be frozen;
	// clients with a higher Priority never are. Default 0.
	MaxPriority int
	// ThawTicks is the number of consecutive ticks available memory must
	// stay at or above the high watermark before thawing starts; default
	// DefaultThawTicks.
	ThawTicks int
	// Streams configures scan resistance: freezing low-priority clients
	// that stream pages into tmem and never read them back.
	Streams StreamPolicy
}

// StreamPolicy configures scan resistance. While tmem is memory-bound
// (its pages turn over, or available memory is below the high watermark),
// a freezable client (priority ≤ MaxPriority) whose ephemeral hit ratio has
// stayed below HitRatio over at least WarmupTicks measured intervals, and
// which puts at least MinShare of all ephemeral puts, is frozen: its pages
// would only push out pages that other clients read back. It is thawed
// after ProbeTicks ticks to measure it again, or once tmem has not been
// memory-bound for 5×ThawTicks ticks.
type StreamPolicy struct {
	// Disabled turns scan resistance off.
	Disabled bool
	// HitRatio is the hit-ratio ceiling of a streaming client; default
	// DefaultStreamHitRatio.
	HitRatio float64
	// MinShare is the least share of the host's ephemeral puts a client
	// must make to count as streaming; default DefaultStreamMinShare.
	MinShare float64
	// ProbeTicks is how long a streaming client stays frozen before it is
	// thawed and measured again; default DefaultStreamProbeTicks.
	ProbeTicks int
}

// CompressPolicy configures switching compression on under sustained
// pressure and off again when it stays calm.
type CompressPolicy struct {
	// Disabled turns the compression rule off.
	Disabled bool
	// On and Off are host pressure scores; 0 ≤ Off < On ≤ 1. Defaults
	// DefaultCompressOn and DefaultCompressOff.
	On, Off float64
	// OnTicks and OffTicks are the consecutive ticks at or above On
	// (at or below Off) that switch compression on (off). Defaults
	// DefaultCompressOnTicks and DefaultCompressOffTicks.
	OnTicks, OffTicks int
}

// ReserveConfig configures pre-start reservations ([Reserver]).
type ReserveConfig struct {
	// DryRun marks actions as not to be executed. Inside a [Policy] the
	// policy's DryRun applies.
	DryRun bool
	// HoldFor keeps tmem frozen for up to this long after a reservation
	// is done, until [Reserver.Release], so guests cannot refill tmem
	// before the new domain has allocated its memory. Zero thaws as soon
	// as every reservation is answered, as xend did.
	HoldFor time.Duration
}

// withDefaults returns a validated copy of c with every zero field set to
// its default.
func (c *PolicyConfig) withDefaults() (PolicyConfig, error) {
	var d PolicyConfig
	if c != nil {
		d = *c
	}
	var err error
	if d.Watermarks, err = d.Watermarks.withDefaults(); err != nil {
		return d, err
	}
	if d.Smoothing == 0 {
		d.Smoothing = DefaultSmoothing
	}
	if !(d.Smoothing > 0 && d.Smoothing <= 1) {
		return d, fmt.Errorf("%w: smoothing %v is outside (0, 1]", ErrConfig, d.Smoothing)
	}
	if d.Weights, err = d.Weights.withDefaults(); err != nil {
		return d, err
	}
	if d.Freeze.ThawTicks == 0 {
		d.Freeze.ThawTicks = DefaultThawTicks
	}
	if d.Freeze.ThawTicks < 0 {
		return d, fmt.Errorf("%w: freeze thaw ticks %d is negative", ErrConfig, d.Freeze.ThawTicks)
	}
	if d.Freeze.Streams, err = d.Freeze.Streams.withDefaults(); err != nil {
		return d, err
	}
	if d.Compress, err = d.Compress.withDefaults(); err != nil {
		return d, err
	}
	d.Reserve.DryRun = d.DryRun
	if d.Reserve, err = d.Reserve.withDefaults(); err != nil {
		return d, err
	}
	return d, nil
}

func (w WeightPolicy) withDefaults() (WeightPolicy, error) {
	if w.Mode > WeightProportional {
		return w, fmt.Errorf("%w: unknown weight mode %d", ErrConfig, uint8(w.Mode))
	}
	if w.Max == 0 {
		w.Max = DefaultWeightMax
	}
	if w.Step == 0 {
		w.Step = DefaultWeightStep
	}
	if w.Band == 0 {
		w.Band = DefaultWeightBand
	}
	if w.HoldTicks == 0 {
		w.HoldTicks = DefaultWeightHoldTicks
	}
	if w.WarmupTicks == 0 {
		w.WarmupTicks = DefaultWarmupTicks
	}
	switch {
	case w.Min > w.Max:
		return w, fmt.Errorf("%w: weight bounds min %d > max %d", ErrConfig, w.Min, w.Max)
	case w.Max > w.Min && w.Step > w.Max-w.Min:
		return w, fmt.Errorf("%w: weight step %d is wider than the bounds [%d, %d]", ErrConfig, w.Step, w.Min, w.Max)
	case w.Max > math.MaxInt32:
		// LIST prints the weight with %d: above 2³¹−1 it reads negative.
		return w, fmt.Errorf("%w: weight max %d exceeds %d", ErrConfig, w.Max, math.MaxInt32)
	case !(w.Band > 1) || math.IsInf(w.Band, 0):
		return w, fmt.Errorf("%w: weight band %v must be a finite number > 1", ErrConfig, w.Band)
	case w.HoldTicks < 0 || w.WarmupTicks < 0:
		return w, fmt.Errorf("%w: weight hold ticks %d and warmup ticks %d must not be negative", ErrConfig, w.HoldTicks, w.WarmupTicks)
	}
	return w, nil
}

func (c CompressPolicy) withDefaults() (CompressPolicy, error) {
	if c.On == 0 {
		c.On = DefaultCompressOn
	}
	if c.Off == 0 {
		c.Off = DefaultCompressOff
	}
	if c.OnTicks == 0 {
		c.OnTicks = DefaultCompressOnTicks
	}
	if c.OffTicks == 0 {
		c.OffTicks = DefaultCompressOffTicks
	}
	if !(c.Off >= 0 && c.Off < c.On && c.On <= 1) {
		return c, fmt.Errorf("%w: compression scores need 0 ≤ off < on ≤ 1, got off %v, on %v", ErrConfig, c.Off, c.On)
	}
	if c.OnTicks < 0 || c.OffTicks < 0 {
		return c, fmt.Errorf("%w: compression ticks on %d, off %d must not be negative", ErrConfig, c.OnTicks, c.OffTicks)
	}
	return c, nil
}

func (r ReserveConfig) withDefaults() (ReserveConfig, error) {
	if r.HoldFor < 0 {
		return r, fmt.Errorf("%w: reserve hold %v is negative", ErrConfig, r.HoldFor)
	}
	return r, nil
}

func (sp StreamPolicy) withDefaults() (StreamPolicy, error) {
	if sp.HitRatio == 0 {
		sp.HitRatio = DefaultStreamHitRatio
	}
	if sp.MinShare == 0 {
		sp.MinShare = DefaultStreamMinShare
	}
	if sp.ProbeTicks == 0 {
		sp.ProbeTicks = DefaultStreamProbeTicks
	}
	switch {
	case !(sp.HitRatio > 0 && sp.HitRatio < 1):
		return sp, fmt.Errorf("%w: stream hit ratio %v is outside (0, 1)", ErrConfig, sp.HitRatio)
	case !(sp.MinShare > 0 && sp.MinShare <= 1):
		return sp, fmt.Errorf("%w: stream minimum share %v is outside (0, 1]", ErrConfig, sp.MinShare)
	case sp.ProbeTicks < 0:
		return sp, fmt.Errorf("%w: stream probe ticks %d is negative", ErrConfig, sp.ProbeTicks)
	}
	return sp, nil
}

package pools_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xentmem/xentmem/pools"
)

func TestNewPolicyConfig(t *testing.T) {
	kib := func(c, l, h uint64) pools.Watermarks {
		return pools.Watermarks{Critical: pools.Level{KiB: c}, Low: pools.Level{KiB: l}, High: pools.Level{KiB: h}}
	}
	tests := []struct {
		name string
		cfg  *pools.PolicyConfig
		// wantErr is a substring of the error; empty means no error.
		wantErr string
	}{
		{name: "nil means defaults"},
		{name: "zero means defaults", cfg: &pools.PolicyConfig{}},
		{name: "absolute watermarks", cfg: &pools.PolicyConfig{Watermarks: kib(1, 2, 3)}},
		{name: "watermarks out of order", cfg: &pools.PolicyConfig{Watermarks: kib(1, 3, 2)}, wantErr: "critical < low < high"},
		{name: "equal watermarks", cfg: &pools.PolicyConfig{Watermarks: kib(2, 2, 3)}, wantErr: "critical < low < high"},
		{name: "one watermark missing", cfg: &pools.PolicyConfig{Watermarks: kib(0, 2, 3)}, wantErr: "critical watermark is not set"},
		{
			name: "mixed kinds",
			cfg: &pools.PolicyConfig{Watermarks: pools.Watermarks{
				Critical: pools.Level{KiB: 1}, Low: pools.Level{Percent: 5}, High: pools.Level{Percent: 8}}},
			wantErr: "mix KiB and percent",
		},
		{
			name: "both kinds on one level",
			cfg: &pools.PolicyConfig{Watermarks: pools.Watermarks{
				Critical: pools.Level{KiB: 1, Percent: 1}, Low: pools.Level{KiB: 2}, High: pools.Level{KiB: 3}}},
			wantErr: "sets both",
		},
		{
			name: "percent above 100",
			cfg: &pools.PolicyConfig{Watermarks: pools.Watermarks{
				Critical: pools.Level{Percent: 5}, Low: pools.Level{Percent: 50}, High: pools.Level{Percent: 120}}},
			wantErr: "outside (0, 100)",
		},
		{name: "weight min above max", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Min: 50, Max: 10}}, wantErr: "min 50 > max 10"},
		{name: "weight step wider than bounds", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Min: 10, Max: 20, Step: 11}}, wantErr: "wider than the bounds"},
		{name: "weight max prints negative", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Max: math.MaxUint32}}, wantErr: "exceeds"},
		{name: "band not above 1", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Band: 0.9}}, wantErr: "band"},
		{name: "band NaN", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Band: math.NaN()}}, wantErr: "band"},
		{name: "unknown weight mode", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{Mode: 7}}, wantErr: "unknown weight mode"},
		{name: "negative hold", cfg: &pools.PolicyConfig{Weights: pools.WeightPolicy{HoldTicks: -1}}, wantErr: "must not be negative"},
		{name: "smoothing above 1", cfg: &pools.PolicyConfig{Smoothing: 1.5}, wantErr: "smoothing"},
		{name: "compress off above on", cfg: &pools.PolicyConfig{Compress: pools.CompressPolicy{On: 0.3, Off: 0.5}}, wantErr: "off < on"},
		{name: "compress on above 1", cfg: &pools.PolicyConfig{Compress: pools.CompressPolicy{On: 2}}, wantErr: "off < on"},
		{name: "negative thaw ticks", cfg: &pools.PolicyConfig{Freeze: pools.FreezePolicy{ThawTicks: -2}}, wantErr: "thaw ticks"},
		{name: "negative hold time", cfg: &pools.PolicyConfig{Reserve: pools.ReserveConfig{HoldFor: -time.Second}}, wantErr: "hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pools.NewPolicy(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewPolicy: %v", err)
				}
				if p == nil {
					t.Fatal("NewPolicy returned nil policy")
				}
				return
			}
			if !errors.Is(err, pools.ErrConfig) {
				t.Fatalf("NewPolicy error = %v, want one wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewPolicy error = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestPolicyConfigDefaults(t *testing.T) {
	got := mustPolicy(t, nil).Config()
	want := pools.PolicyConfig{
		Watermarks: pools.Watermarks{
			Critical: pools.Level{Percent: pools.DefaultCriticalPercent},
			Low:      pools.Level{Percent: pools.DefaultLowPercent},
			High:     pools.Level{Percent: pools.DefaultHighPercent},
		},
		Smoothing: pools.DefaultSmoothing,
		Weights: pools.WeightPolicy{Max: pools.DefaultWeightMax, Step: pools.DefaultWeightStep, Band: pools.DefaultWeightBand,
			HoldTicks: pools.DefaultWeightHoldTicks, WarmupTicks: pools.DefaultWarmupTicks},
		Freeze: pools.FreezePolicy{ThawTicks: pools.DefaultThawTicks, Streams: pools.StreamPolicy{
			HitRatio: pools.DefaultStreamHitRatio, MinShare: pools.DefaultStreamMinShare, ProbeTicks: pools.DefaultStreamProbeTicks}},
		Compress: pools.CompressPolicy{On: pools.DefaultCompressOn, Off: pools.DefaultCompressOff,
			OnTicks: pools.DefaultCompressOnTicks, OffTicks: pools.DefaultCompressOffTicks},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestNewReserverConfig(t *testing.T) {
	if _, err := pools.NewReserver(nil); err != nil {
		t.Errorf("NewReserver(nil): %v", err)
	}
	_, err := pools.NewReserver(&pools.ReserveConfig{HoldFor: -1})
	if !errors.Is(err, pools.ErrConfig) {
		t.Errorf("NewReserver with negative hold: error %v, want ErrConfig", err)
	}
}

func TestWeightModeString(t *testing.T) {
	got := []string{pools.WeightXen.String(), pools.WeightProportional.String(), pools.WeightMode(5).String()}
	if d := cmp.Diff([]string{"xen", "proportional", "WeightMode(5)"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

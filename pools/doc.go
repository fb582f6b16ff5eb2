// Package pools is the pressure-policy engine of the tmem daemon: typed
// snapshots of tmem and host memory, rates between snapshots, a pressure
// model, a policy that turns them into actions, and pre-start memory
// reservations.
//
// It is pure Go: no system calls, no logging, no wall clock (every time
// comes from a [Snapshot] or a now argument), and it imports neither xenctl
// nor hypercall. The daemon converts xenctl's LIST, physinfo and
// QUERY_FREEABLE_MB results into a [Snapshot] and executes the returned
// [Action] values (or, in dry-run mode, only logs them).
//
// # Daemon cycle
//
//	p, err := pools.NewPolicy(cfg)            // validates; errors wrap ErrConfig
//	for each tick {
//		snap := build a Snapshot               // Time from the daemon's clock
//		for _, a := range p.Step(snap) {       // actions in order
//			if a.DryRun { log "would …" } else { execute a }
//		}
//		a := p.Assessment()                    // rates and pressure for metrics
//	}
//
// A pre-start reservation ([Policy.Reserve], or a stand-alone [Reserver]
// for a CLI) is answered by the same loop: read [Reservation.State] after
// each Step.
//
// # Key types
//
//   - [Snapshot], [Host], [Global], [Client], [Pool]: one observation.
//     Counters are cumulative, as LIST prints them.
//   - [Rates] and [RateSet]: per-second rates between two snapshots.
//   - [Assess] and [Pressure]: watermark zone, fair shares, scores.
//   - [Policy], [PolicyConfig], [Action]: the rules.
//   - [Reserver], [Reservation]: freeze, flush, thaw before a domain start.
//
// # Rates
//
// For a counter x between snapshots taken dt apart (dt > 0): rate = Δx/dt,
// where Δx = x₁ − x₀, or x₁ when any counter of the same pool, client or
// G= record went backwards (the object restarted within the interval; the
// Reset flag is set). A client or pool with no counterpart in the previous
// snapshot is New and gets rates of 0. When dt ≤ 0, or either time is zero,
// the interval is 0 and every rate is 0. Hit ratio = Δgs/Δgt (0 without
// gets); failed gets = Δgt − Δgs; failed puts = Δpx. Host-wide sums count
// each shared pool once.
//
// # Pressure
//
// Available memory A = free − outstanding claims. With the watermarks
// resolved to KiB (C < L < H, or percentages of total memory):
//
//	zone:   calm A ≥ H, normal L ≤ A < H, low C ≤ A < L, critical A < C
//	memory: M = 0 for A ≥ H; 0.5·(H−A)/(H−L) for L ≤ A < H;
//	        0.5 + 0.5·(L−A)/(L−C) for C ≤ A < L; 1 for A < C
//	evictions: E = e/(e + p), e = evictions/s (Et) less the pages the
//	        policy itself flushed, p = successful ephemeral puts/s (Ep,
//	        else Σps); so E = 0.5 when every put evicts a page
//	failed puts: F = Σ Δpx / Σ Δpt over ephemeral pools
//	host score: S = 1 − (1−M)(1−E)(1−F)
//
// Fair shares: ephemeral capacity K = max(G= Ec, Σ client Ec) + (A − H)⁺/4
// pages (tmem may grow into memory above the high watermark). Each client
// with an ephemeral pool has entitlement e(w) = max(w,1) under
// [WeightProportional] or 1/max(w,1) under [WeightXen], and fair share
// Kᵢ = K·e(wᵢ)/Σe. Its excess is Oᵢ = clamp((Ecᵢ/Kᵢ) − 1, 0, 1), so 0 at or
// under its share and 1 at twice it.
//
// Pool score (ephemeral pools only): Sₚ = 1 − (1−Fₚ)(1−E)(1−Oᵢ), with Fₚ the
// pool's own Δpx/Δpt. A client's score is the highest of its pools'.
//
// # Policy rules
//
// Evaluated in this order every Step:
//
//  1. Reservations (see [Reserver]).
//  2. Flush: when A < L, flush ⌈H − A⌉ rounded up to a MiB, at most the
//     freeable KiB, from all clients (Xen's FLUSH has no per-client form).
//     It is merged into a reservation's flush when there is one.
//  3. Freeze: when A < C, freeze the unfrozen clients of the lowest
//     Priority present (one level per tick), never those above
//     [FreezePolicy.MaxPriority], nor clients without pools.
//  4. Scan resistance ([StreamPolicy]): while tmem is memory-bound
//     (Turnover ≥ 0.1, or A < H), a freezable client whose ephemeral hit
//     ratio (EWMA) stays below HitRatio while it makes at least MinShare of
//     all ephemeral puts is frozen: a streaming reader (a backup, a scan)
//     only pushes out pages that others read back. It is thawed after
//     ProbeTicks to be measured again, or once tmem has not been
//     memory-bound for 5×ThawTicks ticks.
//  5. Thaw: once A ≥ H for ThawTicks consecutive ticks, thaw the clients
//     the policy froze below critical, highest priority first, one level per
//     tick; never while a reservation keeps tmem frozen.
//  6. Compression: S' ≥ On for OnTicks ticks switches compression on for
//     every client with pools; S' ≤ Off for OffTicks ticks switches it off
//     again where the policy switched it on. S' = 1 − (1−M)(1−T)(1−F) uses
//     the turnover T = all evictions (the policy's flushes included) /
//     (evictions + puts): compression pays off whenever tmem loses pages
//     for lack of memory, whoever evicts them.
//  7. Weights: only when the interval saw guest evictions or failed puts
//     (Xen reads weights only to choose eviction victims). Yield = EWMA of
//     Ge/s divided by the MiB of ephemeral memory held (at least 1); a
//     client at ≥ Band × the page-weighted mean yield is favoured, one at
//     ≤ mean/Band disfavoured. Favouring lowers the weight under
//     [WeightXen] (Xen's client_over_quota makes a high weight evict a
//     client's own pages sooner; xen-tmem-abi.md §3.6) and raises it under
//     [WeightProportional]. One Step per tick, HoldTicks between changes,
//     within [Client.WeightMin, Client.WeightMax] or the configured
//     bounds, after WarmupTicks measured intervals.
//
// In dry-run mode actions carry DryRun, and the policy remembers what it
// would have done (frozen set, weights set, compression marks) so it
// reports each decision once. A flush is not remembered: while available
// memory stays below the low watermark it is reported every tick, as a
// real one would be repeated.
//
// Per-client state (averages and marks) is kept by domain id. A client
// missing from up to three consecutive snapshots keeps it, so a client the
// policy froze is thawed when it reappears; a changed [Client.Handle] or a
// counter reset starts it afresh (a new domain behind an old id).
//
// # Errors
//
// [NewPolicy] and [NewReserver] return errors wrapping [ErrConfig]. Nothing
// else returns an error: bad snapshot values (counters going backwards,
// duplicate domain ids, times out of order) are absorbed as documented
// above and never cause a panic, a negative rate or NaN.
//
// BUG(pools): Reservations that overlap share one cumulative need, but a
// done reservation without a hold (ReserveConfig.HoldFor = 0) stops counting
// at once, so a later reservation may be answered with memory the earlier
// domain is still about to allocate. Set HoldFor and call Release when the
// domain has been built.
//
// BUG(pools): A freeze, weight or compression change that fails to execute
// is not retried: the policy records its decision when it returns the
// action. The daemon should log the failure.
package pools

package workload_test

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/hypercall/xensim/workload"
)

// A guest with a 256-frame page cache scans 16 files of 64 pages
// sequentially, three times: the page cache alone never hits, cleancache
// serves every re-read.
func ExampleCleancache() {
	sim, _ := xensim.New(nil)
	guest, _ := sim.CreateDomain(xensim.DomainConfig{MemoryKiB: 16 << 10})
	cc, err := workload.NewCleancache(sim, guest, &workload.CleancacheConfig{
		Files: 16, Pages: 64, CacheFrames: 256,
		Pattern: workload.Sequential(16, 64),
	})
	if err != nil {
		panic(err)
	}
	if err := cc.Run(3 * 16 * 64); err != nil {
		panic(err)
	}
	st := cc.Stats()
	fmt.Printf("reads %d, page cache hits %d, disk reads %d, avoided %d, hit ratio %.2f\n",
		st.Reads, st.CacheHits, st.DiskReads, st.DiskReadsAvoided(), st.HitRatio())
	cc.Unmount()
	// Output:
	// reads 3072, page cache hits 0, disk reads 1024, avoided 2048, hit ratio 0.67
}

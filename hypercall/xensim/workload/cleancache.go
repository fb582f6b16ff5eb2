package workload

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/xentmem/xentmem/hypercall/xensim"
)

// CleancacheConfig describes a cleancache workload. Zero fields take the
// defaults in brackets.
type CleancacheConfig struct {
	// Filesystems is the number of mounted filesystems, one private
	// ephemeral pool each [1].
	Filesystems int
	// Files per filesystem [64] and Pages per file [256].
	Files, Pages int
	// CacheFrames is the guest's page cache, in 4 KiB frames [1024].
	CacheFrames int
	// FrameBase is the guest frame of the first page-cache frame [0].
	FrameBase uint64
	// Pattern picks the pages read; its Page.File ranges over all
	// filesystems' files (Filesystems × Files) [Uniform].
	Pattern Pattern
	// TruncateEvery truncates a random file every that many reads: its
	// page-cache pages are dropped and its tmem object flushed
	// (FLUSH_OBJECT), and its contents change [0: never].
	TruncateEvery int
	// Seed seeds the default pattern and the truncation choices.
	Seed uint64
}

// CleancacheStats counts what a cleancache run did.
type CleancacheStats struct {
	Reads     uint64 // page reads by the workload
	CacheHits uint64 // served by the page cache
	Gets      uint64 // page-cache misses tried in tmem (GET)
	GetHits   uint64 // pages tmem returned: disk reads avoided
	DiskReads uint64 // pages read from the (simulated) disk
	Puts      uint64 // clean pages put on eviction from the page cache
	PutsOK    uint64 // puts tmem accepted
	Flushes   uint64 // FLUSH_OBJECT on truncation
	Corrupt   uint64 // pages from tmem whose contents were wrong
	Errors    uint64 // unexpected negative results
}

// HitRatio is the share of tmem GETs that hit.
func (s CleancacheStats) HitRatio() float64 {
	if s.Gets == 0 {
		return 0
	}
	return float64(s.GetHits) / float64(s.Gets)
}

// DiskReadsAvoided is the number of page-cache misses tmem served.
func (s CleancacheStats) DiskReadsAvoided() uint64 { return s.GetHits }

type fileKey struct {
	file  int32
	index uint32
}

// Cleancache is one guest's filesystems, page cache and cleancache driver.
type Cleancache struct {
	cfg   CleancacheConfig
	tm    *Tmem
	mem   *xensim.GuestMemory
	pools []int32
	cache *lru[fileKey]
	gen   []uint32 // content generation per file
	rng   *rand.Rand
	stats CleancacheStats
	page  []byte // scratch: expected contents
	got   []byte // scratch: contents read back
}

// NewCleancache mounts the filesystems of domain id: one NEW_POOL (private,
// ephemeral) per filesystem, issued by that domain.
func NewCleancache(s *xensim.Sim, id uint16, cfg *CleancacheConfig) (*Cleancache, error) {
	c := &Cleancache{}
	if cfg != nil {
		c.cfg = *cfg
	}
	cf := &c.cfg
	cf.Filesystems = defInt(cf.Filesystems, 1)
	cf.Files = defInt(cf.Files, 64)
	cf.Pages = defInt(cf.Pages, 256)
	cf.CacheFrames = defInt(cf.CacheFrames, 1024)
	if cf.Pattern == nil {
		cf.Pattern = Uniform(cf.Filesystems*cf.Files, cf.Pages, cf.Seed)
	}
	tm, err := NewTmem(s.Guest(id))
	if err != nil {
		return nil, err
	}
	c.tm, c.mem = tm, s.GuestMemory(id)
	if cf.FrameBase+uint64(cf.CacheFrames) > c.mem.Frames() {
		tm.Close()
		return nil, fmt.Errorf("workload: cleancache: frames %d–%d are not all domain %d's", cf.FrameBase, cf.FrameBase+uint64(cf.CacheFrames)-1, id)
	}
	for i := 0; i < cf.Filesystems; i++ {
		p, err := tm.NewPool(false, false, [2]uint64{})
		if err != nil || p < 0 {
			tm.Close()
			return nil, fmt.Errorf("workload: cleancache: mount %d: new pool: %d %v", i, p, err)
		}
		c.pools = append(c.pools, int32(p))
	}
	c.cache = newLRU[fileKey](cf.CacheFrames)
	c.gen = make([]uint32, cf.Filesystems*cf.Files)
	c.rng = rand.New(rand.NewPCG(cf.Seed, 0xc1ea))
	c.page, c.got = make([]byte, 4096), make([]byte, 4096)
	return c, nil
}

func defInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// Stats returns the counters so far.
func (c *Cleancache) Stats() CleancacheStats { return c.stats }

// Run performs n page reads.
func (c *Cleancache) Run(n int) error {
	for i := 0; i < n; i++ {
		if err := c.read(c.cfg.Pattern.Next()); err != nil {
			return err
		}
		if te := c.cfg.TruncateEvery; te > 0 && c.stats.Reads%uint64(te) == 0 {
			if err := c.truncate(c.rng.IntN(len(c.gen))); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Cleancache) handle(file int) (pool int32, oid [3]uint64) {
	return c.pools[file/c.cfg.Files], [3]uint64{uint64(file) + 2} // inode numbers from 2
}

// contents writes the expected contents of (file, index) into c.page.
func (c *Cleancache) contents(file int, index uint32) []byte {
	fill(c.page, 0xCC, uint64(file), uint64(c.gen[file]), uint64(index))
	return c.page
}

// fill writes a page: a 32-byte header (tag, a, b, c), then 1504
// pseudo-random bytes derived from it, then zeros. Like typical file and
// anonymous data it compresses about 2.5:1 (to ~1.6 KiB, so two compressed
// pages share one of Xen's 4 KiB allocator pages and compression in tmem
// gains what it gains on real data), and no two pages are alike.
func fill(p []byte, tag byte, a, b, c uint64) {
	binary.LittleEndian.PutUint64(p[0:], uint64(tag))
	binary.LittleEndian.PutUint64(p[8:], a)
	binary.LittleEndian.PutUint64(p[16:], b)
	binary.LittleEndian.PutUint64(p[24:], c)
	x := uint64(tag)<<56 ^ a*0x9E3779B97F4A7C15 ^ b*0xC2B2AE3D27D4EB4F ^ c*0x165667B19E3779F9
	const random = 1536
	half := min(len(p), random)
	for i := 32; i+8 <= half; i += 8 {
		// splitmix64
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		binary.LittleEndian.PutUint64(p[i:], z^z>>31)
	}
	clear(p[half:])
}

func (c *Cleancache) read(pg Page) error {
	c.stats.Reads++
	k := fileKey{int32(pg.File), pg.Index}
	if _, ok := c.cache.get(k); ok {
		c.stats.CacheHits++
		return nil
	}
	slot, victim, evicted := c.cache.add(k)
	frame := c.cfg.FrameBase + uint64(slot)
	if evicted {
		// Reclaiming a clean page: cleancache_put_page.
		pool, oid := c.handle(int(victim.file))
		rc, err := c.tm.Put(pool, oid, victim.index, frame)
		if err != nil {
			return err
		}
		c.stats.Puts++
		if rc == 1 {
			c.stats.PutsOK++
		}
	}
	pool, oid := c.handle(pg.File)
	rc, err := c.tm.Get(pool, oid, pg.Index, frame)
	if err != nil {
		return err
	}
	c.stats.Gets++
	want := c.contents(pg.File, pg.Index)
	switch {
	case rc == 1:
		c.stats.GetHits++
		if _, err := c.mem.Read(frame, c.got); err != nil {
			return err
		}
		if !bytes.Equal(c.got, want) {
			c.stats.Corrupt++
		}
		return nil
	case rc < 0 && rc != -1001: // EEMPTY is a miss
		c.stats.Errors++
	}
	c.stats.DiskReads++
	return c.mem.Write(frame, want)
}

// truncate drops a file's cached pages and its tmem object; the file's
// contents change.
func (c *Cleancache) truncate(file int) error {
	c.cache.removeIf(func(k fileKey) bool { return int(k.file) == file })
	pool, oid := c.handle(file)
	if _, err := c.tm.FlushObject(pool, oid); err != nil {
		return err
	}
	c.stats.Flushes++
	c.gen[file]++
	return nil
}

// Unmount destroys the filesystems' pools and releases the driver.
func (c *Cleancache) Unmount() error {
	defer c.tm.Close()
	for _, p := range c.pools {
		if rc, err := c.tm.DestroyPool(p); err != nil || rc != 1 {
			return fmt.Errorf("workload: cleancache: destroy pool %d: %d %v", p, rc, err)
		}
	}
	return nil
}

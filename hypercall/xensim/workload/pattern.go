package workload

import "math/rand/v2"

// Page names one page of a workload's data: a file (or, for frontswap, 0)
// and a page index in it.
type Page struct {
	File  int
	Index uint32
}

// Pattern produces the sequence of pages a workload touches. Every
// implementation here is deterministic for a given seed.
type Pattern interface {
	Next() Page
}

type uniform struct {
	r            *rand.Rand
	files, pages int
}

// Uniform touches every page of files×pages with the same probability.
func Uniform(files, pages int, seed uint64) Pattern {
	return &uniform{r: rand.New(rand.NewPCG(seed, 0x5eed)), files: max(files, 1), pages: max(pages, 1)}
}

func (u *uniform) Next() Page {
	n := u.r.IntN(u.files * u.pages)
	return Page{File: n / u.pages, Index: uint32(n % u.pages)}
}

type zipf struct {
	z     *rand.Zipf
	pages int
	perm  []uint32
}

// Zipf touches the files×pages pages with Zipf-distributed popularity of
// exponent skew (> 1; larger is more skewed). Which pages are popular is a
// seeded permutation, so hot pages are spread over files.
func Zipf(files, pages int, skew float64, seed uint64) Pattern {
	files, pages = max(files, 1), max(pages, 1)
	if skew <= 1 {
		skew = 1.0001
	}
	r := rand.New(rand.NewPCG(seed, 0x21bf))
	n := files * pages
	perm := make([]uint32, n)
	for i := range perm {
		perm[i] = uint32(i)
	}
	r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return &zipf{z: rand.NewZipf(r, skew, 1, uint64(n-1)), pages: pages, perm: perm}
}

func (z *zipf) Next() Page {
	n := int(z.perm[z.z.Uint64()])
	return Page{File: n / z.pages, Index: uint32(n % z.pages)}
}

type sequential struct {
	files, pages int
	n            int
}

// Sequential scans every page of every file in order, then starts again
// (the pattern that defeats an LRU page cache).
func Sequential(files, pages int) Pattern {
	return &sequential{files: max(files, 1), pages: max(pages, 1)}
}

func (s *sequential) Next() Page {
	n := s.n
	s.n = (s.n + 1) % (s.files * s.pages)
	return Page{File: n / s.pages, Index: uint32(n % s.pages)}
}

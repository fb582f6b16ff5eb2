package xensim

import "compress/flate"

// Xen compresses tmem pages with LZO1X-1 (tmem_compress_from_client); the
// simulator uses DEFLATE at its fastest level from the standard library to
// decide how many bytes a page would take. The sizes differ from LZO's
// (DEFLATE usually compresses better), but the decisions have the same
// shape: a page whose compressed size reaches tmem_mempool_maxalloc (4064
// bytes) "compressed poorly" and is stored whole (cn), a smaller one is
// stored in the TLSF pool at that size (cp, cb). The page contents are kept
// uncompressed, so a GET returns the same bytes.

type byteCounter struct{ n int }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

// compressedSize returns the DEFLATE size of page.
func (s *Sim) compressedSize(page []byte) int {
	if s.deflate == nil {
		s.deflated = &byteCounter{}
		s.deflate, _ = flate.NewWriter(s.deflated, flate.BestSpeed)
	}
	start := s.clock()
	s.deflated.n = 0
	s.deflate.Reset(s.deflated)
	s.deflate.Write(page)
	s.deflate.Close()
	if s.perfOn() {
		s.tm.perf.add(perfCompress, s.cycles(s.clock().Sub(start)))
	}
	return s.deflated.n
}

//go:build !unix

package hypercalltest

// allocPages falls back to the Go heap where mmap is not available.
func allocPages(n int) ([]byte, func() error, error) {
	return make([]byte, n), func() error { return nil }, nil
}

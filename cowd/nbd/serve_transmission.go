package nbd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
)

// ServeTransmission serves one connection that starts in the transmission
// phase: its handshake happened elsewhere or not at all, and export names
// the export it chose ("" is the default export, as with
// NBD_OPT_EXPORT_NAME). This is how the Linux kernel client talks: it is
// handed a socket after negotiation and sends requests at once. The
// session has simple replies only, no metadata context and no agreed block
// sizes, so BLOCK_STATUS is refused and alignment is not enforced.
//
// Like [Server.ServeConn] it closes nc and returns nil when the client
// disconnects or ctx ends (after answering the requests already read), and
// the protocol error otherwise.
func (s *Server) ServeTransmission(ctx context.Context, nc net.Conn, export string) error {
	defer nc.Close()
	e := s.lookup(export)
	if e == nil {
		return fmt.Errorf("%w: no export %q", ErrConfig, export)
	}
	stop := context.AfterFunc(ctx, func() {
		nc.SetReadDeadline(time.Now())
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	})
	defer stop()
	log := s.log.With(zap.String("remote", remoteName(nc)), zap.String("export", e.Name))
	log.Info("transmission started without handshake")
	c := &conn{srv: s, nc: nc, sess: &session{export: e}, dev: e.Device,
		r: bufio.NewReaderSize(nc, 128<<10), w: bufio.NewWriterSize(nc, 128<<10), log: log,
		jobs: make(chan *job, s.workers)}
	if err := c.transmit(ctx); err != nil {
		return fmt.Errorf("nbd: transmission: %w", err)
	}
	log.Info("connection closed")
	return nil
}

// lookup returns the export called name, the default export for "", or
// nil.
func (s *Server) lookup(name string) *Export {
	for i := range s.exports {
		if s.exports[i].Name == name {
			return &s.exports[i]
		}
	}
	if name == "" {
		return &s.exports[0]
	}
	return nil
}

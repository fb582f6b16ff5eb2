package nbd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Config configures a [Server].
type Config struct {
	// Exports are the devices served. The first one is also the default
	// export, chosen by clients that ask for the empty name.
	Exports []Export
	// Logger receives connection events (debug) and failed requests
	// (warn); nil discards them.
	Logger *zap.Logger
	// Workers bounds the requests of one connection that run at once;
	// 0 means 16. Further requests wait in the socket, which pushes back on
	// the client.
	Workers int
}

// Server serves NBD exports over any net.Listener or net.Conn. It is safe
// for concurrent use; one Server may serve many listeners.
type Server struct {
	exports []Export
	log     *zap.Logger
	workers int
	bufs    bufPool
	jobs    sync.Pool
}

// NewServer validates cfg and returns a Server.
func NewServer(cfg *Config) (*Server, error) {
	if cfg == nil || len(cfg.Exports) == 0 {
		return nil, fmt.Errorf("%w: no exports", ErrConfig)
	}
	s := &Server{exports: cfg.Exports, log: cfg.Logger, workers: cfg.Workers}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.workers <= 0 {
		s.workers = 16
	}
	seen := map[string]bool{}
	for i := range s.exports {
		e := &s.exports[i]
		switch {
		case e.Device == nil:
			return nil, fmt.Errorf("%w: export %q has no device", ErrConfig, e.Name)
		case e.Size < 0:
			return nil, fmt.Errorf("%w: export %q has size %d", ErrConfig, e.Name, e.Size)
		case len(e.Name) > maxStringLen || len(e.Description) > maxStringLen:
			return nil, fmt.Errorf("%w: export name or description longer than %d bytes", ErrConfig, maxStringLen)
		case seen[e.Name]:
			return nil, fmt.Errorf("%w: export %q listed twice", ErrConfig, e.Name)
		}
		seen[e.Name] = true
		bs := e.sizes()
		pow2 := func(v uint32) bool { return bits.OnesCount32(v) == 1 }
		if !pow2(bs.Min) || bs.Min > 64<<10 || !pow2(bs.Preferred) || bs.Preferred < max(bs.Min, 512) ||
			bs.Max < bs.Preferred || bs.Max > 1<<maxBufClass {
			return nil, fmt.Errorf("%w: export %q block sizes %+v", ErrConfig, e.Name, bs)
		}
	}
	return s, nil
}

// Serve accepts connections on l until ctx is done or l fails. On return
// l is closed and every connection it accepted has been served to the end:
// requests already read were answered, then the connection closed. It
// returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.Close()
			return fmt.Errorf("nbd: accept: %w", err)
		}
		wg.Go(func() {
			if err := s.ServeConn(ctx, nc); err != nil {
				s.log.Info("connection ended with an error", zap.Error(err))
			}
		})
	}
}

// ServeConn runs the handshake and transmission phases on one connection
// and closes it. It returns nil when the client disconnects (cleanly or
// not) or ctx ends, and the protocol error otherwise.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	defer nc.Close()
	log := s.log.With(zap.String("remote", remoteName(nc)))
	// Shutdown: wake a blocked reader; give in-flight replies a moment.
	stop := context.AfterFunc(ctx, func() {
		nc.SetReadDeadline(time.Now())
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	})
	defer stop()
	r := bufio.NewReaderSize(nc, 128<<10)
	w := bufio.NewWriterSize(nc, 128<<10)
	sess, err := handshake(s.exports, r, w)
	if err != nil {
		if ctx.Err() != nil || isClosed(err) || errors.Is(err, ErrAborted) || errors.Is(err, net.ErrClosed) {
			log.Debug("handshake ended", zap.Error(err))
			return nil
		}
		return fmt.Errorf("nbd: handshake: %w", err)
	}
	log = log.With(zap.String("export", sess.export.Name))
	log.Info("transmission started", zap.Bool("structured", sess.structured), zap.Bool("base_allocation", sess.baseAlloc))
	c := &conn{srv: s, nc: nc, sess: sess, dev: sess.export.Device, r: r, w: w, log: log,
		jobs: make(chan *job, s.workers)}
	if err := c.transmit(ctx); err != nil {
		return fmt.Errorf("nbd: transmission: %w", err)
	}
	log.Info("connection closed")
	return nil
}

func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "local"
}

func (s *Server) getJob() *job {
	if v := s.jobs.Get(); v != nil {
		return v.(*job)
	}
	return new(job)
}

func (s *Server) putJob(j *job) {
	s.bufs.put(j.buf)
	*j = job{}
	s.jobs.Put(j)
}

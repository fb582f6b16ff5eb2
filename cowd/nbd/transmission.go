package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// job is one request on its way through a connection.
type job struct {
	req   request
	errno Errno   // verdict of session.check
	buf   *[]byte // WRITE payload or READ data
	hdr   [32]byte
}

// conn is the transmission phase of one connection: a reader goroutine
// decodes requests and hands them to a bounded set of workers, which run
// them against the Device in parallel and reply in completion order.
type conn struct {
	srv  *Server
	nc   net.Conn
	sess *session
	dev  Device
	r    *bufio.Reader
	log  *zap.Logger
	jobs chan *job

	wmu     sync.Mutex // guards w and werr; one reply is written at a time
	w       *bufio.Writer
	werr    error
	pending atomic.Int32 // replies waiting for wmu; the last one flushes
}

// transmit serves requests until the client disconnects or ctx ends, then
// waits for in-flight requests to be answered.
func (c *conn) transmit(ctx context.Context) error {
	var wg sync.WaitGroup
	for range c.srv.workers {
		wg.Go(func() {
			for j := range c.jobs {
				c.handle(j)
				c.srv.putJob(j)
			}
		})
	}
	err := c.readLoop(ctx)
	close(c.jobs)
	wg.Wait()
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = c.w.Flush()
	}
	c.wmu.Unlock()
	return err
}

func (c *conn) readLoop(ctx context.Context) error {
	var hdr [requestHeaderLen]byte
	for {
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			if ctx.Err() != nil || isClosed(err) || errors.Is(err, net.ErrClosed) {
				return nil // shutdown, or the client went away
			}
			return err
		}
		j := c.srv.getJob()
		if err := decodeRequest(hdr[:], &j.req); err != nil {
			c.srv.putJob(j)
			return err
		}
		if j.req.typ == cmdDisc {
			c.srv.putJob(j)
			return nil
		}
		j.errno = c.sess.check(&j.req)
		if j.req.typ == cmdWrite {
			// The payload follows whatever the verdict.
			n := int(j.req.length)
			if j.errno == 0 {
				j.buf = c.srv.bufs.get(n)
				_, err := io.ReadFull(c.r, (*j.buf)[:n])
				if err != nil {
					c.srv.putJob(j)
					return ignoreClosed(ctx, err)
				}
			} else if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
				c.srv.putJob(j)
				return ignoreClosed(ctx, err)
			}
		}
		c.jobs <- j
	}
}

func ignoreClosed(ctx context.Context, err error) error {
	if ctx.Err() != nil || isClosed(err) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// handle runs one request and sends its reply.
func (c *conn) handle(j *job) {
	if j.errno != 0 {
		c.replyErr(j, j.errno, "")
		return
	}
	r := &j.req
	off, n := int64(r.off), int64(r.length)
	fua := r.flags&cmdFlagFUA != 0
	var err error
	switch r.typ {
	case cmdRead:
		j.buf = c.srv.bufs.get(int(n))
		p := (*j.buf)[:n]
		var got int
		if got, err = c.dev.ReadAt(p, off); got == len(p) {
			c.replyData(j, p)
			return
		}
		if err == nil {
			err = io.ErrUnexpectedEOF // a short read without an error breaks io.ReaderAt
		}
	case cmdWrite:
		if _, err = c.dev.WriteAt((*j.buf)[:n], off); err == nil && fua {
			err = c.dev.Sync()
		}
	case cmdFlush:
		err = c.dev.Sync()
	case cmdTrim:
		if err = c.dev.(Trimmer).Trim(off, n); err == nil && fua {
			err = c.dev.Sync()
		}
	case cmdWriteZeroes:
		err = c.dev.(Zeroer).WriteZeroes(off, n, r.flags&cmdFlagNoHole != 0, r.flags&cmdFlagFastZero != 0)
		if err == nil && fua {
			err = c.dev.Sync()
		}
	case cmdCache:
		if ca, ok := c.dev.(Cacher); ok {
			err = ca.Cache(off, n)
		}
	case cmdBlockStatus:
		c.blockStatus(j)
		return
	}
	if err != nil {
		e := ErrnoOf(err)
		if e != ENOTSUP { // a refused FAST_ZERO is routine
			c.log.Warn("request failed", zap.Uint16("command", r.typ), zap.Uint64("offset", r.off),
				zap.Uint32("length", r.length), zap.String("errno", e.Symbol()), zap.Error(err))
		}
		c.replyErr(j, e, err.Error())
		return
	}
	c.replySimple(j, 0)
}

// blockStatus answers BLOCK_STATUS for base:allocation.
func (c *conn) blockStatus(j *job) {
	r := &j.req
	bs, ok := c.dev.(BlockStatuser)
	pos, end := int64(r.off), int64(r.off)+int64(r.length)
	be := binary.BigEndian
	out := be.AppendUint32(make([]byte, 0, 64), metaBaseAllocationID)
	var lastFlags uint32
	count := 0
	for pos < end && count < maxBlockStatusExtents {
		run, hole, zero := end-pos, false, false
		if ok {
			var err error
			if run, hole, zero, err = bs.BlockStatus(pos, end-pos); err != nil {
				c.replyErr(j, ErrnoOf(err), err.Error())
				return
			}
			if run <= 0 {
				c.replyErr(j, EIO, "device reported an empty extent")
				return
			}
			run = min(run, end-pos)
		}
		run = min(run, 1<<30) // extent lengths are 32-bit
		var flags uint32
		if hole {
			flags |= stateHole
		}
		if zero {
			flags |= stateZero
		}
		if n := len(out); count > 0 && flags == lastFlags && int64(be.Uint32(out[n-8:]))+run <= 1<<30 {
			be.PutUint32(out[n-8:], be.Uint32(out[n-8:])+uint32(run))
		} else {
			out = be.AppendUint32(out, uint32(run))
			out = be.AppendUint32(out, flags)
			count++
			lastFlags = flags
		}
		pos += run
		if r.flags&cmdFlagReqOne != 0 {
			break
		}
	}
	c.writeReply(func(w *bufio.Writer) {
		w.Write(chunkHeader(j, replyFlagDone, replyTypeBlockStatus, len(out)))
		w.Write(out)
	})
}

// replySimple sends a simple reply without data.
func (c *conn) replySimple(j *job, e Errno) {
	be := binary.BigEndian
	h := j.hdr[:16]
	be.PutUint32(h[0:], magicSimpleReply)
	be.PutUint32(h[4:], uint32(e))
	be.PutUint64(h[8:], j.req.cookie)
	c.writeReply(func(w *bufio.Writer) { w.Write(h) })
}

// replyData sends READ data, as one OFFSET_DATA chunk when structured
// replies are on.
func (c *conn) replyData(j *job, p []byte) {
	if !c.sess.structured {
		be := binary.BigEndian
		h := j.hdr[:16]
		be.PutUint32(h[0:], magicSimpleReply)
		be.PutUint32(h[4:], 0)
		be.PutUint64(h[8:], j.req.cookie)
		c.writeReply(func(w *bufio.Writer) { w.Write(h); w.Write(p) })
		return
	}
	h := chunkHeader(j, replyFlagDone, replyTypeOffsetData, 8+len(p))
	c.writeReply(func(w *bufio.Writer) {
		var off [8]byte
		binary.BigEndian.PutUint64(off[:], j.req.off)
		w.Write(h)
		w.Write(off[:])
		w.Write(p)
	})
}

// replyErr sends an error: an ERROR chunk with a message when structured
// replies are on (and always for READ and BLOCK_STATUS), else a simple
// reply.
func (c *conn) replyErr(j *job, e Errno, msg string) {
	if !c.sess.structured {
		c.replySimple(j, e)
		return
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	h := chunkHeader(j, replyFlagDone, replyTypeError, 6+len(msg))
	c.writeReply(func(w *bufio.Writer) {
		var b [6]byte
		binary.BigEndian.PutUint32(b[0:], uint32(e))
		binary.BigEndian.PutUint16(b[4:], uint16(len(msg)))
		w.Write(h)
		w.Write(b[:])
		w.WriteString(msg)
	})
}

func chunkHeader(j *job, flags, typ uint16, n int) []byte {
	be := binary.BigEndian
	h := j.hdr[:20]
	be.PutUint32(h[0:], magicStructReply)
	be.PutUint16(h[4:], flags)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[8:], j.req.cookie)
	be.PutUint32(h[16:], uint32(n))
	return h
}

// writeReply serialises one reply onto the connection. The buffer is
// flushed when no other reply is waiting, so replies batch under load. A
// write error closes the connection, which also stops the reader.
func (c *conn) writeReply(fn func(w *bufio.Writer)) {
	c.pending.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	last := c.pending.Add(-1) == 0
	if c.werr != nil {
		return
	}
	fn(c.w)
	if last || c.w.Buffered() > 1<<20 {
		if c.werr = c.w.Flush(); c.werr != nil {
			c.nc.Close()
		}
	}
}

package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"

	"go.uber.org/zap"
)

// job is one request on its way through a connection. Once its reply is
// queued (conn.send) the job belongs to the reply writer, which recycles it
// after the reply is on the wire.
type job struct {
	req   request
	errno Errno   // verdict of session.check
	buf   *[]byte // WRITE payload or READ data
	hdr   [32]byte
	head  []byte // the reply's header, within hdr
	body  []byte // the reply's payload (READ data, extents, error message), sent without a copy
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
	// w is the handshake's writer: whatever it still buffers is sent before
	// the first reply; replies bypass it (see reply.go).
	w *bufio.Writer

	replies replyQueue
}

// transmit serves requests until the client disconnects or ctx ends, then
// waits for in-flight requests to be answered.
func (c *conn) transmit(ctx context.Context) error {
	if c.w != nil {
		if err := c.w.Flush(); err != nil {
			return ignoreClosed(ctx, err)
		}
	}
	var wg sync.WaitGroup
	for range c.srv.workers {
		wg.Go(func() {
			for j := range c.jobs {
				c.handle(j) // queues the reply, which recycles j
			}
		})
	}
	err := c.readLoop(ctx)
	close(c.jobs)
	wg.Wait() // every reply has been written (or the connection failed)
	return err
}

func (c *conn) readLoop(ctx context.Context) error {
	var hdr [requestHeaderLen]byte
	// After a large WRITE payload the next header is read past the buffer
	// too: filling the buffer would pull in the next payload, only to copy
	// it out again.
	unbuffered := false
	for {
		var err error
		if unbuffered && c.r.Buffered() == 0 {
			_, err = io.ReadFull(c.nc, hdr[:])
		} else {
			_, err = io.ReadFull(c.r, hdr[:])
		}
		if err != nil {
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
		unbuffered = j.req.typ == cmdWrite && j.errno == 0 && j.req.length >= directReadMin
		if j.req.typ == cmdWrite {
			// The payload follows whatever the verdict.
			n := int(j.req.length)
			if j.errno == 0 {
				j.buf = c.srv.bufs.get(n)
				if err := c.readPayload((*j.buf)[:n]); err != nil {
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

// directReadMin is the payload size from which readPayload reads past the
// connection's buffer, straight into the job's buffer (a copy of a 64 KiB
// payload through the buffer was a tenth of cowd's CPU time on sequential
// writes).
const directReadMin = 16 << 10

// readPayload reads a WRITE payload. A large payload is read from the
// connection directly once the buffered bytes are used up, which saves
// copying it through the reader's buffer.
func (c *conn) readPayload(p []byte) error {
	if len(p) < directReadMin {
		_, err := io.ReadFull(c.r, p)
		return err
	}
	n, _ := c.r.Read(p[:min(len(p), c.r.Buffered())]) // no I/O: buffered bytes only
	_, err := io.ReadFull(c.nc, p[n:])
	return err
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
	j.head = chunkHeader(j, replyFlagDone, replyTypeBlockStatus, len(out))
	j.body = out
	c.send(j)
}

// replySimple sends a simple reply without data.
func (c *conn) replySimple(j *job, e Errno) {
	j.head = simpleHeader(j, e)
	c.send(j)
}

// replyData sends READ data p (which lives in j.buf), as one OFFSET_DATA
// chunk when structured replies are on.
func (c *conn) replyData(j *job, p []byte) {
	if !c.sess.structured {
		j.head = simpleHeader(j, 0)
	} else {
		chunkHeader(j, replyFlagDone, replyTypeOffsetData, 8+len(p))
		binary.BigEndian.PutUint64(j.hdr[20:], j.req.off)
		j.head = j.hdr[:28]
	}
	j.body = p
	c.send(j)
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
	chunkHeader(j, replyFlagDone, replyTypeError, 6+len(msg))
	binary.BigEndian.PutUint32(j.hdr[20:], uint32(e))
	binary.BigEndian.PutUint16(j.hdr[24:], uint16(len(msg)))
	j.head = j.hdr[:26]
	j.body = []byte(msg)
	c.send(j)
}

func simpleHeader(j *job, e Errno) []byte {
	be := binary.BigEndian
	h := j.hdr[:16]
	be.PutUint32(h[0:], magicSimpleReply)
	be.PutUint32(h[4:], uint32(e))
	be.PutUint64(h[8:], j.req.cookie)
	return h
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

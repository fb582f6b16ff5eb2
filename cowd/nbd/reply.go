package nbd

import (
	"net"
	"sync"
)

// replyQueue batches the replies of one connection. A worker queues its
// finished job; if no reply is being written, that worker becomes the
// writer and sends everything queued with one writev (net.Buffers: the
// headers and the READ data go out without being copied into a buffer),
// again and again until the queue is empty. Jobs are recycled only once
// their reply is on the wire, because their buffers are the data sent.
type replyQueue struct {
	mu      sync.Mutex // guards the fields below
	queue   []*job     // replies waiting for the writer
	spare   []*job     // the previous batch's slice, reused
	writing bool       // a worker is writing; it will pick up queue
	err     error      // the first write error; later replies are dropped

	// Used only by the current writer.
	iov  [][]byte
	bufs net.Buffers
}

// send queues j's reply (j.head, then j.body) and, unless another worker
// is writing, writes the queued replies. A write error closes the
// connection, which also stops the reader.
func (c *conn) send(j *job) {
	q := &c.replies
	q.mu.Lock()
	q.queue = append(q.queue, j)
	if q.writing {
		q.mu.Unlock()
		return
	}
	q.writing = true
	for len(q.queue) > 0 {
		batch := q.queue
		q.queue = q.spare[:0]
		err := q.err
		q.mu.Unlock()
		if err == nil {
			if err = c.writeBatch(batch); err != nil {
				c.nc.Close()
			}
		}
		for i, b := range batch {
			c.srv.putJob(b)
			batch[i] = nil
		}
		q.mu.Lock()
		q.spare = batch[:0]
		if q.err == nil {
			q.err = err
		}
	}
	q.writing = false
	q.mu.Unlock()
}

// writeBatch writes the replies of batch with as few system calls as the
// kernel allows (writev, at most 1024 buffers each).
func (c *conn) writeBatch(batch []*job) error {
	q := &c.replies
	v := q.iov[:0]
	for _, j := range batch {
		v = append(v, j.head)
		if len(j.body) > 0 {
			v = append(v, j.body)
		}
	}
	q.iov = v
	q.bufs = v
	_, err := q.bufs.WriteTo(c.nc)
	clear(v) // WriteTo consumed q.bufs; drop the references to the payloads
	return err
}

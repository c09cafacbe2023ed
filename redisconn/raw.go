package redisconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Raw is a minimal RESP2 connection for the per-key hot paths (scan's
// TYPE/PTTL/OBJECT ENCODING/MEMORY USAGE pipeline, migrate's size check and
// MULTI/DUMP read), where go-redis's per-command objects cost as much CPU
// as everything else. It speaks to the same server with the same settings
// as a go-redis client (address, TLS, user, password, database); everything
// else goes through go-redis. Not safe for concurrent use: one per worker.
// After a network error (IsNetErr) the connection is out of step: close it
// and dial again.
type Raw struct {
	opt  *redis.Options
	conn net.Conn
	r    *bufio.Reader
	w    []byte
}

// ReplyError is an error reply from the server ("NOPERM ...", "ERR ...").
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// DialRaw connects with opt's address, TLS, credentials and database.
func DialRaw(ctx context.Context, opt *redis.Options) (*Raw, error) {
	network := opt.Network
	if network == "" {
		network = "tcp"
	}
	d := net.Dialer{Timeout: opt.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, opt.Addr)
	if err != nil {
		return nil, err
	}
	if opt.TLSConfig != nil {
		tc := tls.Client(conn, opt.TLSConfig.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	c := &Raw{opt: opt, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	user, pass := opt.Username, opt.Password
	if opt.CredentialsProvider != nil {
		user, pass = opt.CredentialsProvider()
	}
	n := 0
	switch {
	case pass != "" && user != "":
		c.Command("AUTH", user, pass)
		n++
	case pass != "":
		c.Command("AUTH", pass)
		n++
	}
	if opt.DB != 0 {
		c.Command("SELECT", strconv.Itoa(opt.DB))
		n++
	}
	if n > 0 {
		if err := c.Flush(opt.DialTimeout + opt.ReadTimeout); err != nil {
			conn.Close()
			return nil, err
		}
		for i := 0; i < n; i++ {
			if _, _, _, err := c.Reply(); err != nil {
				conn.Close()
				return nil, err
			}
		}
	}
	return c, nil
}

func (c *Raw) Close() error { return c.conn.Close() }

// Command appends one command to the write buffer.
func (c *Raw) Command(args ...string) {
	c.w = append(c.w, '*')
	c.w = strconv.AppendInt(c.w, int64(len(args)), 10)
	c.w = append(c.w, '\r', '\n')
	for _, a := range args {
		c.w = append(c.w, '$')
		c.w = strconv.AppendInt(c.w, int64(len(a)), 10)
		c.w = append(c.w, '\r', '\n')
		c.w = append(c.w, a...)
		c.w = append(c.w, '\r', '\n')
	}
}

// Flush sends the buffered commands; replies must then be read within
// timeout (the deadline covers the whole batch).
func (c *Raw) Flush(timeout time.Duration) error {
	if err := c.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.conn.Write(c.w)
	c.w = c.w[:0]
	return err
}

// Reply reads one reply: a simple string (s, valid until the next read), a
// bulk string (s, a fresh buffer the caller may keep), an integer (n), a
// null (null true) or an error reply (a ReplyError). Arrays are an error
// here: read their header with ArrayLen.
func (c *Raw) Reply() (s []byte, n int64, null bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, 0, false, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, 0, false, fmt.Errorf("redis protocol: malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, 0, false, nil
	case '-':
		return nil, 0, false, ReplyError(body)
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		return nil, n, false, err
	case '$':
		size, err := strconv.Atoi(string(body))
		if err != nil {
			return nil, 0, false, err
		}
		if size < 0 {
			return nil, 0, true, nil
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, 0, false, err
		}
		return buf[:size], 0, false, nil
	case '*':
		if string(body) == "-1" {
			return nil, 0, true, nil
		}
	}
	return nil, 0, false, fmt.Errorf("redis protocol: unexpected reply %q", line)
}

// ArrayLen reads an array header and returns its length (-1 for a null
// array); an error reply is returned as a ReplyError.
func (c *Raw) ArrayLen() (int, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("redis protocol: malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '*':
		return strconv.Atoi(string(body))
	case '-':
		return 0, ReplyError(body)
	}
	return 0, fmt.Errorf("redis protocol: expected an array, got %q", line)
}

// IsNetErr reports whether err broke the connection (as opposed to an error
// reply): the batch can be retried on a new connection.
func IsNetErr(err error) bool {
	if err == nil {
		return false
	}
	_, reply := err.(ReplyError)
	return !reply
}

// RawConn is a Raw connection dialled on first use: a network error during
// an exchange closes it, and the next exchange dials again (error replies
// leave it open and in step). Not safe for concurrent use: one per
// goroutine.
type RawConn struct {
	opt *redis.Options
	rc  *Raw
}

// NewRawConn returns a RawConn to the server of opt; nothing is dialled yet.
func NewRawConn(opt *redis.Options) *RawConn { return &RawConn{opt: opt} }

// Exchange dials if needed, lets write buffer the commands for n keys,
// sends them, and runs read over the replies, all within the reply timeout:
// the client's read timeout (at least 10 s) plus 1 ms per key. read must
// consume every reply, also after an error reply.
func (c *RawConn) Exchange(ctx context.Context, n int, write func(*Raw), read func(*Raw) error) error {
	if c.rc == nil {
		rc, err := DialRaw(ctx, c.opt)
		if err != nil {
			return err
		}
		c.rc = rc
	}
	write(c.rc)
	err := c.rc.Flush(max(c.opt.ReadTimeout, 10*time.Second) + time.Duration(n)*time.Millisecond)
	if err == nil {
		err = read(c.rc)
	}
	if IsNetErr(err) {
		c.Close()
	}
	return err
}

// Close closes the connection, if dialled.
func (c *RawConn) Close() {
	if c.rc != nil {
		c.rc.Close()
		c.rc = nil
	}
}

// ReplyFlat reads one reply of any shape and appends its strings to dst:
// bulk and simple strings (fresh buffers the caller may keep), integers as
// decimal text, arrays flattened depth-first, nulls as nothing. An error
// reply, at any depth, is returned as a ReplyError once the whole reply is
// read, so the connection stays in step.
func (c *Raw) ReplyFlat(dst [][]byte) ([][]byte, error) {
	var first error
	var read func(depth int) error
	read = func(depth int) error {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) < 3 || line[len(line)-2] != '\r' || depth > 8 {
			return fmt.Errorf("redis protocol: malformed line %q", line)
		}
		body := line[1 : len(line)-2]
		switch line[0] {
		case '+', ':':
			dst = append(dst, append([]byte(nil), body...))
		case '-':
			if first == nil {
				first = ReplyError(body)
			}
		case '$':
			size, err := strconv.Atoi(string(body))
			if err != nil {
				return err
			}
			if size < 0 {
				return nil
			}
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				return err
			}
			dst = append(dst, buf[:size])
		case '*':
			n, err := strconv.Atoi(string(body))
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if err := read(depth + 1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("redis protocol: unexpected reply %q", line)
		}
		return nil
	}
	if err := read(0); err != nil {
		return dst, err
	}
	return dst, first
}

package queuemove

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store/sqsstore"
	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
)

// loseReceive is an HTTP transport to the emulator that, once armed, lets
// the first ReceiveMessage that hands out messages reach the emulator and
// then cuts the connection before the answer arrives: SQS has made those
// messages in flight for the receiver's visibility timeout, and the
// receiver never learns their receipt handles. This is what made
// TestRollback flaky under load (an attempt whose answer broke mid-body,
// retried inside the SDK: the first attempt's 10 messages stayed in flight
// longer than MaxWait and were reported left, their items consumed).
type loseReceive struct {
	armed atomic.Bool
	lost  atomic.Int64 // messages handed out in answers that were cut
}

func (l *loseReceive) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Header.Get("X-Amz-Target") != "AmazonSQS.ReceiveMessage" || !l.armed.Load() {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var out struct{ Messages []json.RawMessage }
	_ = json.Unmarshal(body, &out)
	if len(out.Messages) > 0 && l.armed.CompareAndSwap(true, false) {
		l.lost.Add(int64(len(out.Messages)))
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// A receive of rollback's own whose answer is lost leaves its messages in
// flight for rollback's Visibility, which is longer than MaxWait here (as
// in TestRollback: 60 s against 20 s). Those messages are rollback's, not a
// consumer's: it waits for them to come back and returns every item; it
// neither stops at MaxWait with them "left in SQS" nor counts their items
// as consumed.
func TestRollbackWaitsForItsOwnLostReceive(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%v", fifo), func(t *testing.T) {
			ctx := ctxT(t)
			list := fmt.Sprintf("jobs:lostreceive:%v", fifo)
			e := newEnv(t, faithful, fifo, list)
			e.rdb.Del(ctx, list)
			var produced []string
			for i := range 25 {
				p := fmt.Sprintf("job-%d", i)
				produced = append(produced, p)
				e.rdb.LPush(ctx, list, p)
			}
			o := e.opts()
			o.Drain = true
			if _, err := Run(ctx, o); err != nil {
				t.Fatal(err)
			}
			fault := &loseReceive{}
			t.Setenv("AWS_CA_BUNDLE", "") // a CA bundle needs the SDK's own HTTP client; the emulator is plain HTTP
			svc, err := sqsstore.New(context.Background(), sqsstore.Options{Endpoint: faithful.URL, Credentials: sqsemu.Credentials,
				CallTimeout: 5 * time.Second, HTTPClient: &http.Client{Transport: fault}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := e.cfg
			cfg.SQS = svc
			fault.armed.Store(true)
			rb, err := Rollback(ctx, RollbackOptions{Config: cfg, Wait: time.Second, Visibility: 3 * time.Second, MaxWait: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if fault.lost.Load() == 0 {
				t.Fatal("no receive answer was cut: the test proves nothing")
			}
			lr := rb.Lists[0]
			if !rb.Complete || lr.LeftInSQS.Total() != 0 || lr.Consumed != 0 || lr.FromSQS != 25 || lr.Pushed != 25 {
				t.Fatalf("after a lost answer carrying %d messages: complete %v %#v", fault.lost.Load(), rb.Complete, lr)
			}
			got, _ := e.rdb.LRange(ctx, list, 0, -1).Result()
			slices.Reverse(got) // pop order
			if !slices.Equal(got, produced) {
				t.Fatalf("list after rollback (pop order) %q\nwant %q", got, produced)
			}
			if c, _ := e.queue(list).Counts(ctx); c.Total() != 0 {
				t.Errorf("queue still holds %#v", c)
			}
		})
	}
}

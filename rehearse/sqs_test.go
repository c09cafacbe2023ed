package rehearse

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store/sqsstore"
	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
)

// A ReceiveMessage whose answer is lost leaves its messages in flight on
// SQS until their visibility timeout: the rehearsal's consumer must wait
// for them to come back and receive them, not report them NEVER RECEIVED
// (a false loss that fails a CI rehearsal). Real emulator, real SDK; the
// emulator loses the first answer that holds messages.
func TestConsumerReceivesWhatALostReceiveLeftInFlight(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "redisplit-test")
	}
	var lost atomic.Int32
	emu, err := sqsemu.Start(sqsemu.Options{Faithful: true, LoseReceive: func() bool { return lost.Add(1) == 1 }})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := sqsstore.New(ctx, sqsstore.Options{Region: "us-east-1", Endpoint: emu.URL, Credentials: sqsemu.Credentials, CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("lostrecv-%d", time.Now().UnixNano())
	q, err := svc.Queue(ctx, name, false, true)
	if err != nil {
		t.Fatal(err)
	}
	s := &sqsRun{svc: svc, lists: []string{"jobs"}, fig: &QueueFigures{Lists: map[string]*QueueList{"jobs": {Queue: name}}},
		want: map[string]map[string]int{"jobs": {}}, got: map[string]map[string]int{"jobs": {}}}
	for b := 0; b < 3; b++ {
		var es []sqsstore.Entry
		for i := 0; i < 10; i++ {
			body := fmt.Sprintf(`{"n":%d}`, b*10+i)
			es = append(es, sqsstore.Entry{ID: fmt.Sprint(i), Body: body})
			s.want["jobs"][body]++
		}
		outs, err := q.SendBatch(ctx, es)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
		}
	}
	s.consume(ctx)
	s.drainConsumer(ctx, 60*time.Second)
	if n, by := s.missing(); n > 0 {
		t.Fatalf("%d of 30 messages never received after a lost ReceiveMessage answer (%d receive calls failed): %v", n, s.failed.Load(), by)
	}
	if lost.Load() == 0 || s.failed.Load() == 0 {
		t.Fatalf("the emulator lost no answer (asked %d times, %d receive calls failed): the test proves nothing", lost.Load(), s.failed.Load())
	}
}

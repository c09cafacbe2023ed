package queuemove

import (
	"testing"

	"github.com/redisplit/redisplit/state"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []rec{
		{kind: recEpoch, str: "e1"},
		{kind: recSource, src: "q\x00bin", srcKind: kindList, str: "q\x00bin", initial: 42},
		{kind: recIntent, src: "q", seq: 1 << 40, hash: itemHash("x")},
		{kind: recMoved, src: "q", seq: 7, str: "msg-id"},
		{kind: recParked, src: "q", seq: 8, str: "too large"},
		{kind: recResent, src: "q", seq: 9},
		{kind: recReturned, src: "q", seq: 10},
	}
	for _, r := range recs {
		got, err := decode(r.encode())
		if err != nil || got != r {
			t.Errorf("%q: got %+v %v", r.kind, got, err)
		}
		if _, err := decode(r.encode()[:len(r.encode())-1]); err == nil && r.kind != recEpoch {
			t.Errorf("%q: a truncated record decoded", r.kind)
		}
	}
	if _, err := decode("Z"); err == nil {
		t.Error("unknown kind decoded")
	}
}

// Replay counts outcomes once per seq and keeps the last items with their
// outcome for recovery.
func TestReplay(t *testing.T) {
	d, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j, err := d.OpenQueueJournal("queue")
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	rs = append(rs, rec{kind: recEpoch, str: "E"}.encode(), rec{kind: recSource, src: "l", srcKind: kindList, str: "l", initial: 3}.encode())
	for seq := uint64(1); seq <= 3; seq++ {
		rs = append(rs, rec{kind: recIntent, src: "l", seq: seq, hash: itemHash("x")}.encode())
	}
	rs = append(rs, rec{kind: recMoved, src: "l", seq: 1, str: "m1"}.encode(), rec{kind: recMoved, src: "l", seq: 1, str: "again"}.encode(),
		rec{kind: recParked, src: "l", seq: 2, str: "why"}.encode(), rec{kind: recResent, src: "l", seq: 3}.encode())
	if _, err := j.Append(rs...); err != nil {
		t.Fatal(err)
	}
	j.Close()
	js, err := replay(d, "queue", true)
	if err != nil {
		t.Fatal(err)
	}
	s := js.sources["l"]
	if js.epoch != "E" || s.initial != 3 || s.maxSeq != 3 || s.moved != 1 || s.parked != 1 || s.resent != 1 || s.openCount() != 1 ||
		len(s.tail) != 3 || s.tail[0].outcome != recMoved || s.tail[1].outcome != recParked || s.tail[2].outcome != 0 ||
		andNotCount(s.movedBits, nil) != 1 {
		t.Fatalf("%+v", s)
	}
}

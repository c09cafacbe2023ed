package configfile

import (
	"testing"

	"github.com/redisplit/redisplit/config"
)

// The keys of a kind: sqs target are a contract: they load under these
// names, and a bad value is a one-line *config.Error naming the key.
func TestSQSTarget(t *testing.T) {
	c, err := load(t, `targets:
  queue:
    kind: sqs
    region: eu-west-1
    endpoint: http://127.0.0.1:4100
    queue_name: "jobs-{key}"
    fifo: true
    create_queues: true
    message_group_id: "g-{key}"
    pop_from: left
    delayed_set: "{key}:delayed"
    delayed_score: ms
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := c.Targets["queue"].SQS
	want := config.SQS{Region: "eu-west-1", SQSEndpoint: "http://127.0.0.1:4100", QueueName: "jobs-{key}", FIFO: true, CreateQueues: true,
		MessageGroupID: "g-{key}", PopFrom: "left", DelayedSet: "{key}:delayed", DelayedScore: "ms"}
	if q != want {
		t.Fatalf("got %+v\nwant %+v", q, want)
	}
	if n, err := q.QueueFor("queue:mail/é"); err != nil || n != "jobs-queue-mail---.fifo" {
		t.Errorf("QueueFor = %q, %v", n, err)
	}
	if g := q.GroupFor("queue:mail é"); g != "g-queue:mail---" {
		t.Errorf("GroupFor = %q", g)
	}
	if d := q.DelayedFor("q1"); d != "q1:delayed" {
		t.Errorf("DelayedFor = %q", d)
	}
	long := make([]byte, 90)
	for i := range long {
		long[i] = 'k'
	}
	if _, err := q.QueueFor(string(long)); err == nil {
		t.Error("a name over 80 characters was accepted")
	}

	bad := []struct{ name, yaml, field, want string }{
		{"endpoint", "endpoint: localhost:4100", "targets.queue.endpoint", "is not an http:// or https:// URL"},
		{"name chars", "queue_name: 'jobs:{key}'", "targets.queue.queue_name", "take only A-Z a-z 0-9 _ -"},
		{"fifo suffix", "{queue_name: 'jobs-{key}.fifo', fifo: true}", "targets.queue.queue_name", "set fifo: true"},
		{"group on standard", "message_group_id: x", "targets.queue.message_group_id", "fifo is false"},
		{"pop_from", "pop_from: top", "targets.queue.pop_from", "is not right"},
		{"delayed unit", "{delayed_set: 'd:{key}', delayed_score: minutes}", "targets.queue.delayed_score", "is not s or ms"},
		{"typo", "queue_nme: x", "targets.queue.queue_nme", "did you mean queue_name?"},
	}
	_, err = load(t, "targets: {cache: {kind: sqs}}", nil)
	assertConfigError(t, err, "targets.cache.kind", "only the queue bucket")
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if y[0] != '{' {
				y = "{" + y + "}"
			}
			_, err := load(t, "targets:\n  queue: {kind: sqs, "+y[1:len(y)-1]+"}\n", nil)
			assertConfigError(t, err, tt.field, tt.want)
		})
	}
}

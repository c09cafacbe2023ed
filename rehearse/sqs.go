package rehearse

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
)

// The queue bucket on SQS (a Layout store of kind sqs), in the live flow.
// SQS is the emulator in this process (github.com/Admiral-Piett/goaws
// v0.5.4 through package sqsemu, its quirks corrected), reached through
// the real SDK by the rehearsal's commands and by its own producer and
// consumer. A queue is moved, not mirrored, so its flow differs from the
// Redis buckets'. Ordering contracts:
//
//  1. Before migrate starts: the bucket's lists and their items on legacy
//     are read (what the move starts from); with FaultDropQueueItem one
//     item is then taken from a list and thrown away (a consumer still
//     working on legacy); the consumer on SQS starts (consumers start on
//     SQS first): one receiver per list, receiving and deleting, counting
//     every body it gets.
//  2. While the load writes legacy, the producer pushes jobs onto the
//     lists on legacy (LPUSH, unique bodies) and migrate --dual-write moves
//     them. The Redis buckets' live phase (catch-up, verify, comparison)
//     follows, without the queue bucket.
//  3. Then, with or without the Redis cutover flow: cutover --bucket
//     queue records that producers switched (the producer no longer pushes
//     to legacy); the producer sends jobs to SQS directly; complete
//     --bucket queue drains what remains on legacy and ends the mover.
//  4. The consumer is waited for (until it received every job produced, at
//     most 60 s), then verify --bucket queue --consumers-started
//     --producers-switched: per list, a queue/conservation case — verify's
//     own balance, and the rehearsal's: the items the list held plus those
//     the producer pushed = remaining + in flight + parked + moved, with
//     nothing left on legacy. Per list, a queue/delivered case: every job
//     produced (on legacy or sent directly) was received from SQS, none
//     unknown; duplicates (a standard queue delivers at least once) are
//     counted. A shortfall in either is a loss (exit 3).

// FaultDropQueueItem takes one item off a queue list on legacy before the
// move starts and throws it away (a consumer still popping on legacy):
// conservation must then fail for that list, and the delivered check too.
const FaultDropQueueItem = "drop-queue-item"

// Phases of the SQS queue flow; all but PhaseQueueLoad and
// PhaseQueueDirect are per bucket (cutover, complete) or per list
// (conservation, delivered: the case's bucket is the list key).
const (
	PhaseQueueLoad         = "queue/load"
	PhaseQueueCutover      = "queue/cutover"
	PhaseQueueDirect       = "queue/producers-switched"
	PhaseQueueComplete     = "queue/complete"
	PhaseQueueConservation = "queue/conservation"
	PhaseQueueDelivered    = "queue/delivered"
)

// goawsVersion is the emulator's version (go.mod pins it).
const goawsVersion = "v0.5.4"

// Pace of the queue producer.
const (
	queuePushRate = 60 // jobs a second pushed onto legacy's lists while the load runs
	queueDirect   = 10 // jobs per list sent to SQS directly once producers switched
)

// consumerVisibility is the rehearsal consumer's visibility timeout. A
// ReceiveMessage whose answer is lost (a timeout, a closed connection)
// leaves its messages in flight on SQS until it passes; they are then
// delivered again, as SQS does for any consumer. The drain waits longer
// than this for nothing new (drainConsumer), so such messages are
// received, not reported lost.
const consumerVisibility = 5 * time.Second

// SQSEmulator is the queue bucket's SQS: the emulator in this process,
// with queue names of its own (goaws's queues are process-global).
type SQSEmulator struct {
	emu      *sqsemu.Emulator
	template string // queue_name: "rh<pid>-<n>-{key}"
}

var sqsRuns atomic.Int64

func startSQS() (*SQSEmulator, error) {
	e, err := sqsemu.Start(sqsemu.Options{Faithful: true})
	if err != nil {
		return nil, fmt.Errorf("start the SQS emulator: %w", err)
	}
	return &SQSEmulator{emu: e, template: fmt.Sprintf("rh%d-%d-{key}", os.Getpid(), sqsRuns.Add(1))}, nil
}

// URL is the emulator's endpoint.
func (s *SQSEmulator) URL() string { return s.emu.URL }

// Close stops the emulator.
func (s *SQSEmulator) Close() { s.emu.Close() }

func (s *SQSEmulator) target(fifo bool) config.Target {
	return config.Target{Kind: config.KindSQS, SQS: config.SQS{Region: "us-east-1", SQSEndpoint: s.emu.URL, QueueName: s.template,
		FIFO: fifo, CreateQueues: true}}
}

// SQSEnvironment is the AWS environment the rehearsal's commands run with
// when a bucket is on the emulator: static throw-away credentials (the
// emulator checks no signature) and no shared files, instance metadata or
// profile, so neither the real AWS credentials nor the default chain's
// lookups reach the emulator. dir is the rehearsal's directory. The
// caller sets it for the process (the commands run in it).
func SQSEnvironment(dir string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": "redisplit-rehearse", "AWS_SECRET_ACCESS_KEY": "redisplit-rehearse", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "aws-config-none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "aws-credentials-none"),
	}
}

// QueueFigures are the SQS queue flow's figures in a Result.
type QueueFigures struct {
	Bucket string                `json:"bucket"`
	Lists  map[string]*QueueList `json:"lists"`
}

// QueueList is one list's figures.
type QueueList struct {
	Queue    string `json:"queue"`
	Initial  int    `json:"initial"`  // items on legacy before the move
	Pushed   int    `json:"pushed"`   // pushed onto legacy by the producer during the move
	Direct   int    `json:"direct"`   // sent to SQS directly after the switch
	Received int    `json:"received"` // messages the consumer received (duplicates included)
	Distinct int    `json:"distinct"`
	Dropped  int    `json:"dropped,omitempty"` // FaultDropQueueItem
}

// sqsRun is the queue flow of one rehearsal.
type sqsRun struct {
	bucket string
	target config.SQS
	svc    *sqsstore.Client
	legacy *redis.Client
	fig    *QueueFigures
	lists  []string
	want   map[string]map[string]int // list → body → times produced

	mu       sync.Mutex
	got      map[string]map[string]int // list → body → times received
	recvErr  error
	stop     context.CancelFunc
	stopped  chan struct{}
	received atomic.Int64
	failed   atomic.Int64 // ReceiveMessage calls that failed (their messages come back after consumerVisibility)
}

// newSQSRun reads the bucket's lists on legacy (contract 1).
func newSQSRun(ctx context.Context, legacy *redis.Client, t config.Target, bucket string, snap *Snapshot) (*sqsRun, error) {
	svc, err := sqsstore.New(ctx, sqsstore.Options{Region: t.Region, Endpoint: t.SQSEndpoint, Credentials: sqsemu.Credentials, CallTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	s := &sqsRun{bucket: bucket, target: t.SQS, svc: svc, legacy: legacy, fig: &QueueFigures{Bucket: bucket, Lists: map[string]*QueueList{}},
		want: map[string]map[string]int{}, got: map[string]map[string]int{}}
	for k, f := range snap.Keys {
		if f.bucket != bucket {
			continue
		}
		typ, err := legacy.Type(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		if typ == "list" {
			s.lists = append(s.lists, k)
		}
	}
	sort.Strings(s.lists)
	for _, l := range s.lists {
		items, err := legacy.LRange(ctx, l, 0, -1).Result()
		if err != nil {
			return nil, err
		}
		name, err := s.target.QueueFor(l)
		if err != nil {
			return nil, err
		}
		s.fig.Lists[l] = &QueueList{Queue: name, Initial: len(items)}
		s.want[l], s.got[l] = map[string]int{}, map[string]int{}
		for _, it := range items {
			s.want[l][it]++
		}
	}
	return s, nil
}

// dropItem is FaultDropQueueItem: one item of the first non-empty list
// taken and thrown away (it stays in want: it was on legacy when the move
// was planned).
func (s *sqsRun) dropItem(ctx context.Context) (string, string, error) {
	for _, l := range s.lists {
		v, err := s.legacy.RPop(ctx, l).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return "", "", err
		}
		s.fig.Lists[l].Dropped++
		return l, v, nil
	}
	return "", "", fmt.Errorf("no queue list with an item to drop")
}

// consume starts one receiver per list (contract 1): it waits for the
// queue (migrate creates it), then receives and deletes until stopped.
func (s *sqsRun) consume(ctx context.Context) {
	cctx, cancel := context.WithCancel(ctx)
	s.stop, s.stopped = cancel, make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range s.lists {
		wg.Add(1)
		go func(l string) {
			defer wg.Done()
			if err := s.receive(cctx, l); err != nil && cctx.Err() == nil {
				s.mu.Lock()
				if s.recvErr == nil {
					s.recvErr = fmt.Errorf("consumer of %s: %w", l, err)
				}
				s.mu.Unlock()
			}
		}(l)
	}
	go func() { wg.Wait(); close(s.stopped) }()
}

func (s *sqsRun) receive(ctx context.Context, l string) error {
	name := s.fig.Lists[l].Queue
	var q sqsstore.Queue
	for {
		var err error
		if q, err = s.svc.Queue(ctx, name, s.target.FIFO, false); err == nil {
			break
		}
		if c := sqsstore.Code(err); c != "NonExistentQueue" && c != "QueueDoesNotExist" {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		ms, err := q.Receive(ctx, 10, time.Second, consumerVisibility)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if sqsstore.ClassOf(err) == sqsstore.Retry {
				s.failed.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		if len(ms) == 0 {
			continue
		}
		receipts := make([]string, len(ms))
		s.mu.Lock()
		for i, m := range ms {
			s.got[l][m.Body]++
			receipts[i] = m.ReceiptHandle
		}
		s.mu.Unlock()
		s.received.Add(int64(len(ms)))
		if err := q.Delete(context.WithoutCancel(ctx), receipts); err != nil {
			return err
		}
	}
	return nil
}

// produce pushes jobs onto the lists on legacy until ctx ends (contract
// 2); it returns how many and the first error.
func (s *sqsRun) produce(ctx context.Context) (int, error) {
	if len(s.lists) == 0 {
		return 0, nil
	}
	tick := time.NewTicker(time.Second / queuePushRate)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, nil
		case <-tick.C:
		}
		l := s.lists[n%len(s.lists)]
		body := fmt.Sprintf(`{"class":"RehearseJob","list":%q,"n":%d,"via":"legacy"}`, l, n)
		if err := s.legacy.LPush(context.WithoutCancel(ctx), l, body).Err(); err != nil {
			return n, fmt.Errorf("LPUSH %s: %w", l, err)
		}
		s.mu.Lock()
		s.want[l][body]++
		s.fig.Lists[l].Pushed++
		s.mu.Unlock()
		n++
	}
}

// sendDirect is a switched producer: queueDirect jobs per list sent to
// SQS directly (contract 3).
func (s *sqsRun) sendDirect(ctx context.Context) (int, error) {
	n := 0
	for _, l := range s.lists {
		q, err := s.svc.Queue(ctx, s.fig.Lists[l].Queue, s.target.FIFO, false)
		if err != nil {
			return n, err
		}
		var es []sqsstore.Entry
		for i := 0; i < queueDirect; i++ {
			body := fmt.Sprintf(`{"class":"RehearseJob","list":%q,"n":%d,"via":"sqs"}`, l, i)
			e := sqsstore.Entry{ID: strconv.Itoa(i), Body: body}
			if s.target.FIFO {
				e.GroupID, e.DedupID = "rehearse-direct", fmt.Sprintf("direct-%d", i)
			}
			es = append(es, e)
			s.mu.Lock()
			s.want[l][body]++
			s.mu.Unlock()
		}
		outs, err := q.SendBatch(ctx, es)
		if err != nil {
			return n, fmt.Errorf("SendMessageBatch to %s: %w", q.Name(), err)
		}
		for i, o := range outs {
			if o.Err != nil {
				return n, fmt.Errorf("SendMessageBatch to %s, entry %d: %w", q.Name(), i, o.Err)
			}
		}
		s.fig.Lists[l].Direct += len(es)
		n += len(es)
	}
	return n, nil
}

// missing counts, per list, the produced jobs not received yet.
func (s *sqsRun) missing() (total int, by map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by = map[string][]string{}
	for l, w := range s.want {
		for body, n := range w {
			if s.got[l][body] < n {
				total += n - s.got[l][body]
				by[l] = append(by[l], body)
			}
		}
	}
	return total, by
}

// drainConsumer waits until every produced job was received (or timeout,
// or nothing new for longer than the consumer's visibility timeout while
// some are missing: a message whose receive was lost comes back by then),
// then stops the consumer.
func (s *sqsRun) drainConsumer(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last, lastAt := s.received.Load(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, _ := s.missing(); n == 0 {
			break
		}
		if r := s.received.Load(); r != last {
			last, lastAt = r, time.Now()
		} else if time.Since(lastAt) > consumerVisibility+5*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates are counted too
	s.stop()
	<-s.stopped
}

// flow runs contracts 3 and 4 through lr's commands.
func (s *sqsRun) flow(ctx context.Context, lr *liveRun) {
	res, b := lr.res, s.bucket
	end := lr.phase(PhaseQueueCutover)
	// as the runbook says: cut over once the bucket is syncing (the mover
	// emptied every list once)
	t0 := time.Now()
	phase, werr := s.waitSyncing(ctx, lr.stateDir, lr.o.Live.CaughtUpTimeout)
	if werr != nil {
		res.add(Case{Phase: PhaseQueueCutover, Bucket: b, OK: false, Duration: time.Since(t0),
			Detail: fmt.Sprintf("the bucket never became syncing (the mover did not empty every list once) within %s: phase %s, %v", lr.o.Live.CaughtUpTimeout, phase, werr)})
		end(false)
		return
	}
	out := lr.run("cutover-"+b, "cutover", "--bucket", b, "--yes", "-o", "json")
	c := transitionCase(PhaseQueueCutover, "cutover", b, out)
	if c.OK {
		c.Detail = fmt.Sprintf("producers switched to SQS, recorded (the bucket was %s after %s); the mover keeps moving what still reaches legacy",
			phase, time.Since(t0).Round(10*time.Millisecond))
	}
	res.add(c)
	end(c.OK)
	if !c.OK {
		return
	}

	end = lr.phase(PhaseQueueDirect)
	n, err := s.sendDirect(ctx)
	dc := Case{Phase: PhaseQueueDirect, Bucket: s.bucket, OK: err == nil, Detail: fmt.Sprintf("%d jobs sent to SQS directly by the switched producer (%d per list)", n, queueDirect)}
	if err != nil {
		dc.Detail += ": " + err.Error()
	}
	res.add(dc)
	end(dc.OK)

	end = lr.phase(PhaseQueueComplete)
	out = lr.run("complete-"+b, "complete", "--bucket", b, "--quiet", lr.o.Live.Quiet.String(), "--yes", "-o", "json")
	c = transitionCase(PhaseQueueComplete, "complete", b, out)
	if c.OK {
		var d migrate.QueueDetails
		_ = json.Unmarshal(detailsOf(out), &d)
		c.Detail = fmt.Sprintf("completed: nothing reached legacy for %s; the mover drained the rest and ended: %d moved, %d parked, %d in flight, %d remaining",
			d.QuietFor.Round(time.Millisecond), d.Moved, d.Parked, d.InFlight, d.Remaining)
		if !d.Drained || d.Remaining+d.InFlight > 0 {
			c.OK = false
			c.Detail = "complete exited 0 but did not drain: " + c.Detail
		}
	}
	res.add(c)
	end(c.OK)

	end = lr.phase(PhaseQueueConservation)
	s.drainConsumer(ctx, 60*time.Second)
	out = lr.run("verify-queue", "verify", "--bucket", b, "--consumers-started", "--producers-switched", "-o", "json")
	ok := s.conservationCases(lr, out)
	end(ok)
	end = lr.phase(PhaseQueueDelivered)
	end(s.deliveredCases(lr))
}

// waitSyncing waits until the state in stateDir shows the bucket syncing
// or verified (the mover has emptied every list once); it returns the
// phase last seen.
func (s *sqsRun) waitSyncing(ctx context.Context, stateDir string, timeout time.Duration) (state.Phase, error) {
	sd, err := state.OpenReadOnly(stateDir)
	if err != nil {
		return "", err
	}
	var ph state.Phase
	for deadline := time.Now().Add(timeout); ; {
		st, err := sd.Load()
		if err != nil {
			return ph, err
		}
		if sb := st.Buckets[s.bucket]; sb != nil {
			if ph = sb.Phase; ph == state.Syncing || ph == state.Verified {
				return ph, nil
			}
		}
		if time.Now().After(deadline) {
			return ph, fmt.Errorf("timed out")
		}
		select {
		case <-ctx.Done():
			return ph, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// conservationCases adds one queue/conservation case per list from
// verify's JSON report.
func (s *sqsRun) conservationCases(lr *liveRun, out Output) bool {
	var vr struct {
		OK     bool `json:"ok"`
		Queues []struct {
			Bucket string `json:"bucket"`
			Note   string `json:"note"`
			queuemove.VerifyResult
		} `json:"queues"`
	}
	err := json.Unmarshal([]byte(out.Stdout), &vr)
	checks := map[string]queuemove.ListCheck{}
	if err == nil {
		for _, q := range vr.Queues {
			if q.Bucket != s.bucket {
				continue
			}
			for _, l := range q.Lists {
				if l.Kind == "list" {
					checks[l.List] = l
				}
			}
		}
	}
	all := true
	for _, l := range s.lists {
		f := s.fig.Lists[l]
		c := Case{Phase: PhaseQueueConservation, Bucket: l, OK: true, Duration: out.Duration}
		lc, found := checks[l]
		switch {
		case out.Code != 0 && out.Code != 3 || err != nil:
			c.OK = false
			c.Detail = fmt.Sprintf("redisplit verify --bucket %s exited %d", s.bucket, out.Code)
			if err != nil {
				c.Detail += "; cannot read its JSON report: " + err.Error()
			}
			c.Output = tail(out.Stderr+"\n"+out.Stdout, 4000)
		case !found:
			c.OK = false
			c.Detail = "verify reports no conservation for this list"
		default:
			// the rehearsal knows what entered the list: what it held
			// and what its producer pushed
			want := int64(f.Initial + f.Pushed)
			have := lc.Remaining + lc.InFlight + lc.Parked + lc.Moved
			c.Detail = fmt.Sprintf("verify: initial %d + pushed %d = remaining %d + in flight %d + parked %d + moved %d (%s); the rehearsal: %d held + %d pushed = %d",
				lc.Initial, lc.Pushed, lc.Remaining, lc.InFlight, lc.Parked, lc.Moved, conservedWord(lc.Conserved), f.Initial, f.Pushed, want)
			if !lc.Conserved {
				c.OK = false
				c.Keys = append(c.Keys, lc.Problems...)
			}
			if have != want {
				c.OK = false
				c.Detail += fmt.Sprintf("; %d items UNACCOUNTED FOR", want-have)
			}
			if lc.Remaining+lc.InFlight > 0 {
				c.OK = false
				c.Detail += fmt.Sprintf("; %d items still on legacy after complete", lc.Remaining+lc.InFlight)
			}
		}
		if !c.OK {
			lr.res.Lost = true
		}
		all = all && c.OK
		lr.res.add(c)
	}
	return all
}

func conservedWord(ok bool) string {
	if ok {
		return "conserved"
	}
	return "NOT CONSERVED"
}

// deliveredCases adds one queue/delivered case per list.
func (s *sqsRun) deliveredCases(lr *liveRun) bool {
	_, missing := s.missing()
	s.mu.Lock()
	defer s.mu.Unlock()
	all := true
	for _, l := range s.lists {
		f := s.fig.Lists[l]
		var extra []string
		dups, received := 0, 0
		for body, n := range s.got[l] {
			received += n
			switch w := s.want[l][body]; {
			case w == 0:
				extra = append(extra, body)
			case n > w:
				dups += n - w
			}
		}
		f.Received, f.Distinct = received, len(s.got[l])
		produced := f.Initial + f.Pushed + f.Direct
		c := Case{Phase: PhaseQueueDelivered, Bucket: l, OK: len(missing[l]) == 0 && len(extra) == 0,
			Detail: fmt.Sprintf("%d jobs produced (%d on legacy before the move, %d pushed during it, %d sent to SQS directly), %d received from %s (%d duplicates)",
				produced, f.Initial, f.Pushed, f.Direct, received, f.Queue, dups)}
		if n := len(missing[l]); n > 0 {
			c.Detail += fmt.Sprintf(", %d NEVER RECEIVED", n)
			lr.res.Lost = true
			c.Keys = append(c.Keys, sampleN(missing[l], 3)...)
			if f := s.failed.Load(); f > 0 {
				c.Detail += fmt.Sprintf(" (%d ReceiveMessage calls failed on the consumer's side; their messages were waited for %s past their visibility timeout)", f, 5*time.Second)
			}
		}
		if len(extra) > 0 {
			c.Detail += fmt.Sprintf(", %d received that were never produced", len(extra))
			c.Keys = append(c.Keys, sampleN(extra, 3)...)
		}
		if s.recvErr != nil {
			c.OK = false
			c.Detail += "; " + s.recvErr.Error()
		}
		all = all && c.OK
		lr.res.add(c)
	}
	return all
}

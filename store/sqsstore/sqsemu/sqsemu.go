// Package sqsemu runs an SQS emulator in-process for tests and rehearsals:
// github.com/Admiral-Piett/goaws v0.5.4 (the AWS JSON protocol that
// aws-sdk-go-v2 speaks), behind a TCP front that can be taken down and up
// again on the same port (the service unreachable), optionally with its
// known quirks corrected.
//
// goaws keeps its queues in process-global state: every Emulator of a
// process shares them, so give every test its own queue names.
//
// Quirks of goaws v0.5.4 and what Faithful does about them:
//   - SendMessageBatch answers with a body the SDK cannot read (it sees
//     neither Successful nor Failed entries although the messages were
//     enqueued), ignores each entry's DelaySeconds and MaximumMessageSize:
//     Faithful serves SendMessageBatch itself by sending each entry through
//     goaws's SendMessage and answering with Successful and Failed as SQS
//     does; Reject can make it fail chosen entries (SenderFault).
//   - ApproximateNumberOfMessages counts in-flight and delayed messages and
//     ApproximateNumberOfMessagesDelayed is missing: Faithful answers
//     GetQueueAttributes's counts from goaws's queues, visible, in flight
//     and delayed apart.
//   - A queue created without MaximumMessageSize accepts any size: Faithful
//     refuses messages over 256 KiB, as SQS does by default.
//
// Without Faithful the raw goaws answers (redisplit's SQS store copes with
// its SendMessageBatch by falling back to SendMessage).
package sqsemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/models"
	"github.com/Admiral-Piett/goaws/app/router"
	"github.com/aws/aws-sdk-go-v2/aws"
	log "github.com/sirupsen/logrus"
)

// AccountID is the account in the emulator's queue URLs.
const AccountID = "000000000000"

// Options configure an Emulator.
type Options struct {
	Faithful bool
	// Reject, with Faithful, is asked about every SendMessageBatch entry:
	// a non-empty code makes the entry fail with that code (SenderFault).
	Reject func(body string) (code string)
	// LoseReceive, with Faithful, is asked after every ReceiveMessage that
	// made messages in flight: true loses the answer (the connection is
	// closed before it is written), as a timeout or a cut connection does
	// on SQS. The messages stay in flight until their visibility timeout.
	LoseReceive func() bool
}

// Emulator is one running emulator.
type Emulator struct {
	URL string // http://127.0.0.1:PORT, the endpoint for clients

	opts    Options
	backend *httptest.Server
	mu      sync.Mutex
	addr    string
	ln      net.Listener
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
	stopped bool
}

var once sync.Once

// Start starts an emulator. Close stops it (the queues stay, global).
func Start(o Options) (*Emulator, error) {
	once.Do(func() {
		log.SetLevel(log.ErrorLevel)
		log.SetOutput(io.Discard)
		models.CurrentEnvironment.AccountID = AccountID
		models.CurrentEnvironment.EnableDuplicates = true // FIFO deduplication by MessageDeduplicationId
		models.CurrentEnvironment.Host = "127.0.0.1"
		go gosqs.PeriodicTasks(100*time.Millisecond, make(chan bool)) // visibility timeouts, dedup window
	})
	e := &Emulator{opts: o, conns: map[net.Conn]bool{}}
	raw := router.New()
	var h http.Handler = raw
	if o.Faithful {
		h = &faithful{raw: raw, reject: o.Reject, loseReceive: o.LoseReceive}
	}
	e.backend = httptest.NewServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.backend.Close()
		return nil, err
	}
	e.addr = ln.Addr().String()
	e.URL = "http://" + e.addr
	_, port, _ := net.SplitHostPort(e.addr)
	models.CurrentEnvironment.Port = port
	e.serve(ln)
	return e, nil
}

// Credentials are anonymous credentials for clients of the emulator (it
// checks no signature, and the default chain must not be consulted).
var Credentials aws.CredentialsProvider = aws.AnonymousCredentials{}

func (e *Emulator) serve(ln net.Listener) {
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	backend := strings.TrimPrefix(e.backend.URL, "http://")
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns[c] = true
			e.mu.Unlock()
			go e.pipe(c, backend)
		}
	}()
}

func (e *Emulator) pipe(c net.Conn, backend string) {
	defer func() {
		c.Close()
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
	}()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	e.mu.Lock()
	e.conns[b] = true
	e.mu.Unlock()
	defer func() {
		b.Close()
		e.mu.Lock()
		delete(e.conns, b)
		e.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

// Down makes the emulator unreachable: its port refuses connections and
// open connections are cut.
func (e *Emulator) Down() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln != nil {
		e.ln.Close()
		e.ln = nil
	}
	for c := range e.conns {
		c.Close()
	}
}

// Up makes it reachable again on the same port.
func (e *Emulator) Up() error {
	e.mu.Lock()
	if e.ln != nil || e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("sqsemu: listen again on %s: %w", e.addr, err)
	}
	e.serve(ln)
	return nil
}

// Close stops the emulator.
func (e *Emulator) Close() {
	e.Down()
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.wg.Wait()
	e.backend.Close()
}

// faithful serves SendMessageBatch and GetQueueAttributes as SQS does and
// passes everything else to goaws.
type faithful struct {
	raw         http.Handler
	reject      func(string) string
	loseReceive func() bool
}

func (f *faithful) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := r.Header.Get("X-Amz-Target")
	switch action {
	case "AmazonSQS.SendMessageBatch":
		f.sendBatch(w, r)
	case "AmazonSQS.SendMessage":
		f.sendOne(w, r)
	case "AmazonSQS.GetQueueAttributes":
		f.attributes(w, r)
	case "AmazonSQS.ReceiveMessage":
		f.receive(w, r)
	default:
		f.raw.ServeHTTP(w, r)
	}
}

// receive passes ReceiveMessage to goaws and, when loseReceive says so,
// loses an answer that holds messages.
func (f *faithful) receive(w http.ResponseWriter, r *http.Request) {
	if f.loseReceive == nil {
		f.raw.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.raw.ServeHTTP(rec, r)
	var out struct{ Messages []json.RawMessage }
	if json.Unmarshal(rec.Body.Bytes(), &out) == nil && len(out.Messages) > 0 && f.loseReceive() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

type batchIn struct {
	QueueUrl string
	Entries  []map[string]any
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code, msg string) {
	w.Header().Set("x-amzn-query-error", "AWS.SimpleQueueService."+code+";Sender")
	writeJSON(w, http.StatusBadRequest, map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
}

const defaultMax = 256 << 10

func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

func maxSize(queue string) int {
	models.SyncQueues.RLock()
	defer models.SyncQueues.RUnlock()
	if q := models.SyncQueues.Queues[queue]; q != nil && q.MaximumMessageSize > 0 {
		return q.MaximumMessageSize
	}
	return defaultMax
}

func (f *faithful) sendOne(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if json.Unmarshal(body, &in) == nil {
		url, _ := in["QueueUrl"].(string)
		msg, _ := in["MessageBody"].(string)
		if len(msg) > maxSize(queueName(url)) {
			writeErr(w, "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than "+strconv.Itoa(maxSize(queueName(url)))+" bytes.")
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.raw.ServeHTTP(w, r)
}

func (f *faithful) sendBatch(w http.ResponseWriter, r *http.Request) {
	var in batchIn
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, "InvalidParameterValue", err.Error())
		return
	}
	switch {
	case len(in.Entries) == 0:
		writeErr(w, "EmptyBatchRequest", "The batch request doesn't contain any entries.")
		return
	case len(in.Entries) > 10:
		writeErr(w, "TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.")
		return
	}
	total := 0
	for _, e := range in.Entries {
		b, _ := e["MessageBody"].(string)
		total += len(b)
	}
	if total > defaultMax {
		writeErr(w, "BatchRequestTooLong", "Batch requests cannot be longer than 262144 bytes.")
		return
	}
	type ok struct {
		Id, MessageId, MD5OfMessageBody string
		MD5OfMessageAttributes          string `json:",omitempty"`
		SequenceNumber                  string `json:",omitempty"`
	}
	type failed struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []ok
		Failed     []failed
	}{Successful: []ok{}, Failed: []failed{}}
	for _, e := range in.Entries {
		id, _ := e["Id"].(string)
		body, _ := e["MessageBody"].(string)
		if f.reject != nil {
			if code := f.reject(body); code != "" {
				out.Failed = append(out.Failed, failed{Id: id, Code: code, Message: "rejected by the test", SenderFault: true})
				continue
			}
		}
		if len(body) > maxSize(queueName(in.QueueUrl)) {
			out.Failed = append(out.Failed, failed{Id: id, Code: "InvalidParameterValue", Message: "Message must be shorter than the queue's MaximumMessageSize", SenderFault: true})
			continue
		}
		one := map[string]any{"QueueUrl": in.QueueUrl}
		for k, v := range e {
			if k != "Id" {
				one[k] = v
			}
		}
		rec, err := f.call("AmazonSQS.SendMessage", one)
		if err != nil {
			out.Failed = append(out.Failed, failed{Id: id, Code: "InternalError", Message: err.Error()})
			continue
		}
		if rec.Code != http.StatusOK {
			var ge struct{ Code, Message string }
			_ = json.Unmarshal(rec.Body.Bytes(), &ge)
			out.Failed = append(out.Failed, failed{Id: id, Code: strings.TrimPrefix(ge.Code, "AWS.SimpleQueueService."), Message: ge.Message, SenderFault: true})
			continue
		}
		var res ok
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			out.Failed = append(out.Failed, failed{Id: id, Code: "InternalError", Message: err.Error()})
			continue
		}
		res.Id = id
		out.Successful = append(out.Successful, res)
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *faithful) call(target string, body any) (*httptest.ResponseRecorder, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	rec := httptest.NewRecorder()
	f.raw.ServeHTTP(rec, req)
	return rec, nil
}

func (f *faithful) attributes(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	_ = json.Unmarshal(body, &in)
	want := map[string]bool{}
	for _, a := range in.AttributeNames {
		want[a] = true
	}
	counts := want["All"] || want["ApproximateNumberOfMessages"] || want["ApproximateNumberOfMessagesNotVisible"] || want["ApproximateNumberOfMessagesDelayed"]
	if !counts {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.raw.ServeHTTP(w, r)
		return
	}
	name := queueName(in.QueueUrl)
	models.SyncQueues.RLock()
	q := models.SyncQueues.Queues[name]
	var visible, inflight, delayed int
	if q != nil {
		now := time.Now()
		for _, m := range q.Messages {
			switch {
			case m.ReceiptHandle != "":
				inflight++
			case m.DelaySecs > 0 && now.Before(m.SentTime.Add(time.Duration(m.DelaySecs)*time.Second)):
				delayed++
			default:
				visible++
			}
		}
	}
	maxSz := defaultMax
	if q != nil && q.MaximumMessageSize > 0 {
		maxSz = q.MaximumMessageSize
	}
	models.SyncQueues.RUnlock()
	if q == nil {
		writeErr(w, "QueueDoesNotExist", "The specified queue does not exist.")
		return
	}
	all := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"MaximumMessageSize":                    strconv.Itoa(maxSz),
	}
	attrs := map[string]string{}
	for k, v := range all {
		if want["All"] || want[k] {
			attrs[k] = v
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"Attributes": attrs})
}

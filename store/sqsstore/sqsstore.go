// Package sqsstore is redisplit's Amazon SQS store: the few SQS operations
// the queue mover (package queuemove) needs, behind the Queue interface, on
// aws-sdk-go-v2. Errors are classified by their ErrorCode() (emulators
// return untyped API errors) into Retry (wait and send again), Reject (the
// service refuses this item: park it) and Fatal (an operator must act), and
// each names the queue, the endpoint and what to do.
//
// Credentials come from the AWS default chain (environment, shared config
// and credentials files, SSO, web identity, ECS and EC2 roles), never from
// redisplit's configuration or command line.
package sqsstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/redisplit/redisplit/config"
)

// Service limits used when a queue does not say otherwise.
const (
	// DefaultMaxMessageBytes is SQS's historical message size limit (body
	// plus message attributes). The queue's MaximumMessageSize attribute
	// overrides it.
	DefaultMaxMessageBytes = 256 << 10
	// MaxBatchEntries is the entries of one SendMessageBatch or
	// DeleteMessageBatch.
	MaxBatchEntries = 10
	// MaxBatchBytes is the payload of one SendMessageBatch (the sum of its
	// messages) that every SQS region accepts.
	MaxBatchBytes = 256 << 10
	// MaxDelaySeconds is the longest DelaySeconds of a message.
	MaxDelaySeconds = 900
)

// Attr is a message attribute: a String, or a Number written in decimal.
type Attr struct {
	Number bool
	Value  string
}

// Entry is one message to send.
type Entry struct {
	ID           string // unique within one SendBatch call
	Body         string
	Attrs        map[string]Attr
	GroupID      string // FIFO queues
	DedupID      string // FIFO queues
	DelaySeconds int32  // standard queues; 0 to MaxDelaySeconds
}

// Size returns the bytes SQS counts against the message size limit: the
// body and each attribute's name, data type and value.
func (e Entry) Size() int {
	n := len(e.Body)
	for k, a := range e.Attrs {
		n += len(k) + len(a.Value) + len("String")
	}
	return n
}

// Outcome is the result of one Entry.
type Outcome struct {
	MessageID string
	// Err is set when the service refused the entry (Class says whether to
	// send it again); MessageID is empty then.
	Err error
	// Unreported: the service's batch response did not account for this
	// entry, so it was sent again with SendMessage. The first send may have
	// enqueued it too: on a standard queue it may be there twice.
	Unreported bool
}

// Message is one received message.
type Message struct {
	MessageID     string
	ReceiptHandle string
	Body          string
	Attrs         map[string]string // message attributes (String and Number values)
	SentAt        time.Time         // SentTimestamp; zero when unknown
}

// Counts are a queue's approximate message counts.
type Counts struct {
	Visible    int64 `json:"visible"`     // ApproximateNumberOfMessages
	NotVisible int64 `json:"not_visible"` // ApproximateNumberOfMessagesNotVisible (received, not deleted)
	Delayed    int64 `json:"delayed"`     // ApproximateNumberOfMessagesDelayed
}

// Total is every message the queue holds.
func (c Counts) Total() int64 { return c.Visible + c.NotVisible + c.Delayed }

// Queue is one SQS queue. Implementations are safe for concurrent use.
type Queue interface {
	Name() string
	URL() string
	FIFO() bool
	// MaxMessageBytes is the largest message (Entry.Size) the queue takes.
	MaxMessageBytes() int
	// SendBatch sends at most MaxBatchEntries entries of at most
	// MaxBatchBytes together. It returns one Outcome per entry, in order,
	// or an error (and no outcome) when the call as a whole failed.
	SendBatch(ctx context.Context, entries []Entry) ([]Outcome, error)
	// Receive long-polls for up to max messages (1 to 10), waiting up to
	// wait, and hides them from other receivers for visibility. It is one
	// attempt, never retried inside: a Receive that fails after its request
	// may have reached the service (MaybeDelivered) may have made messages
	// in flight that nobody got, and they stay invisible for visibility.
	// The caller must know that to tell them from messages a consumer holds.
	Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]Message, error)
	// Delete deletes received messages by receipt handle (a handle of a
	// message already deleted is not an error).
	Delete(ctx context.Context, receipts []string) error
	// Counts reads GetQueueAttributes.
	Counts(ctx context.Context) (Counts, error)
}

// Service opens queues.
type Service interface {
	// Queue returns the queue called name; with create it is created when
	// missing (FIFO queues with FifoQueue and without content-based
	// deduplication: redisplit sends its own deduplication ids).
	Queue(ctx context.Context, name string, fifo, create bool) (Queue, error)
}

// Options configure a Client.
type Options struct {
	Region   string // empty: the AWS default chain's, or us-east-1 with an Endpoint
	Endpoint string // override (emulators, VPC endpoints)
	// Credentials replaces the default chain (tests use anonymous ones).
	Credentials aws.CredentialsProvider
	// HTTPClient, when set, carries every request.
	HTTPClient *http.Client
	// CallTimeout bounds one call (default 30s; Receive adds its wait).
	CallTimeout time.Duration
}

// FromConfig returns the Options of a kind: sqs target.
func FromConfig(t config.SQS) Options {
	return Options{Region: t.Region, Endpoint: t.SQSEndpoint}
}

// Client is the SQS Service on aws-sdk-go-v2.
type Client struct {
	sdk      *sqs.Client
	endpoint string // for errors
	timeout  time.Duration
}

// New returns a Client. It loads the AWS configuration (region and
// credentials chain) but contacts nothing.
func New(ctx context.Context, o Options) (*Client, error) {
	var lo []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, awsconfig.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		lo = append(lo, awsconfig.WithCredentialsProvider(o.Credentials))
	}
	if o.HTTPClient != nil {
		lo = append(lo, awsconfig.WithHTTPClient(o.HTTPClient))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, config.Errorf("targets.queue", "cannot load the AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		if o.Endpoint == "" {
			return nil, config.Errorf("targets.queue.region", "not set, and the AWS default chain has none (AWS_REGION, the profile's region): set region")
		}
		cfg.Region = "us-east-1"
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "sqs." + cfg.Region + " (AWS)"
	}
	c := &Client{endpoint: endpoint, timeout: o.CallTimeout}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	c.sdk = sqs.NewFromConfig(cfg, func(so *sqs.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return c, nil
}

// Queue implements Service.
func (c *Client) Queue(ctx context.Context, name string, fifo, create bool) (Queue, error) {
	q := &queue{c: c, name: name, fifo: fifo, max: DefaultMaxMessageBytes}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, err := c.sdk.GetQueueUrl(cctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil && isNoQueue(err) && create {
		attrs := map[string]string{}
		if fifo {
			attrs[string(types.QueueAttributeNameFifoQueue)] = "true"
			attrs[string(types.QueueAttributeNameContentBasedDeduplication)] = "false"
		}
		var co *sqs.CreateQueueOutput
		co, err = c.sdk.CreateQueue(cctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err == nil {
			q.url = aws.ToString(co.QueueUrl)
		}
	} else if err == nil {
		q.url = aws.ToString(out.QueueUrl)
	}
	if err != nil {
		if isNoQueue(err) {
			return nil, &Error{Op: "GetQueueUrl", Queue: name, Endpoint: c.endpoint, Class: Fatal, Err: err,
				Hint: "create the queue (queue/create-queues.sh of targets init) or set create_queues: true"}
		}
		return nil, c.explain("GetQueueUrl", name, err)
	}
	ga, err := c.sdk.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameMaximumMessageSize}})
	if err != nil {
		return nil, c.explain("GetQueueAttributes", name, err)
	}
	if n, err := strconv.Atoi(ga.Attributes[string(types.QueueAttributeNameMaximumMessageSize)]); err == nil && n > 0 {
		q.max = n
	}
	return q, nil
}

type queue struct {
	c    *Client
	name string
	url  string
	fifo bool
	max  int
	// perItem is set once the endpoint answered a SendMessageBatch without
	// accounting for its entries (goaws v0.5.4 does): from then on every
	// entry is sent with SendMessage.
	perItem atomic.Bool
}

func (q *queue) Name() string         { return q.name }
func (q *queue) URL() string          { return q.url }
func (q *queue) FIFO() bool           { return q.fifo }
func (q *queue) MaxMessageBytes() int { return q.max }

func (q *queue) SendBatch(ctx context.Context, entries []Entry) ([]Outcome, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	if q.perItem.Load() || len(entries) == 1 {
		return q.sendEach(ctx, entries)
	}
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url)}
	for _, e := range entries {
		in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
			Id: aws.String(e.ID), MessageBody: aws.String(e.Body), MessageAttributes: attrs(e.Attrs),
			MessageGroupId: optional(e.GroupID), MessageDeduplicationId: optional(e.DedupID), DelaySeconds: e.DelaySeconds,
		})
	}
	cctx, cancel := context.WithTimeout(ctx, q.c.timeout)
	out, err := q.c.sdk.SendMessageBatch(cctx, in)
	cancel()
	if err != nil {
		err = q.c.explain("SendMessageBatch", q.name, err)
		if ClassOf(err) == Reject {
			// The request as a whole was refused (too long, one bad
			// entry): send the entries one by one to find the one.
			return q.sendEach(ctx, entries)
		}
		return nil, err
	}
	res := make([]Outcome, len(entries))
	reported := make([]bool, len(entries))
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.ID] = i
	}
	for _, s := range out.Successful {
		if i, ok := index[aws.ToString(s.Id)]; ok {
			res[i], reported[i] = Outcome{MessageID: aws.ToString(s.MessageId)}, true
		}
	}
	for _, f := range out.Failed {
		if i, ok := index[aws.ToString(f.Id)]; ok {
			class := Retry
			if f.SenderFault {
				class = Reject
			}
			res[i], reported[i] = Outcome{Err: &Error{Op: "SendMessageBatch", Queue: q.name, Endpoint: q.c.endpoint, Class: class,
				Code: aws.ToString(f.Code), Err: errors.New(aws.ToString(f.Message))}}, true
		}
	}
	var missing []int
	for i, ok := range reported {
		if !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return res, nil
	}
	if q.perItem.CompareAndSwap(false, true) {
		slog.Warn("sqs: the endpoint's SendMessageBatch response does not account for its entries (an emulator?); sending one message per call from now on",
			"queue", q.name, "endpoint", q.c.endpoint, "entries", len(entries), "reported", len(entries)-len(missing))
	}
	sub := make([]Entry, len(missing))
	for j, i := range missing {
		sub[j] = entries[i]
	}
	again, err := q.sendEach(ctx, sub)
	if err != nil {
		return nil, err
	}
	for j, i := range missing {
		res[i] = again[j]
		res[i].Unreported = true
	}
	return res, nil
}

// sendEach sends entries with one SendMessage each. A failure other than
// a rejection stops it: that entry and the ones after it get the error as
// their outcome, the ones before keep theirs.
func (q *queue) sendEach(ctx context.Context, entries []Entry) ([]Outcome, error) {
	res := make([]Outcome, len(entries))
	for i, e := range entries {
		cctx, cancel := context.WithTimeout(ctx, q.c.timeout)
		out, err := q.c.sdk.SendMessage(cctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(q.url), MessageBody: aws.String(e.Body), MessageAttributes: attrs(e.Attrs),
			MessageGroupId: optional(e.GroupID), MessageDeduplicationId: optional(e.DedupID), DelaySeconds: e.DelaySeconds,
		})
		cancel()
		if err != nil {
			err = q.c.explain("SendMessage", q.name, err)
			if ClassOf(err) != Reject {
				for j := i; j < len(res); j++ {
					res[j] = Outcome{Err: err}
				}
				return res, nil
			}
			res[i] = Outcome{Err: err}
			continue
		}
		res[i] = Outcome{MessageID: aws.ToString(out.MessageId)}
	}
	return res, nil
}

func (q *queue) Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]Message, error) {
	cctx, cancel := context.WithTimeout(ctx, q.c.timeout+wait)
	defer cancel()
	out, err := q.c.sdk.ReceiveMessage(cctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: int32(max),
		WaitTimeSeconds: int32(wait / time.Second), VisibilityTimeout: int32(visibility / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp},
	}, func(so *sqs.Options) {
		// The SDK's own retry would hide an attempt whose answer was lost
		// after SQS had made its messages in flight (see Queue.Receive).
		so.Retryer = aws.NopRetryer{}
	})
	if err != nil {
		return nil, q.c.explain("ReceiveMessage", q.name, err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := Message{MessageID: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attrs: map[string]string{}}
		for k, v := range m.MessageAttributes {
			msg.Attrs[k] = aws.ToString(v.StringValue)
		}
		if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			msg.SentAt = time.UnixMilli(ms)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

func (q *queue) Delete(ctx context.Context, receipts []string) error {
	for len(receipts) > 0 {
		n := min(len(receipts), MaxBatchEntries)
		in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url)}
		for i, r := range receipts[:n] {
			in.Entries = append(in.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)})
		}
		cctx, cancel := context.WithTimeout(ctx, q.c.timeout)
		out, err := q.c.sdk.DeleteMessageBatch(cctx, in)
		cancel()
		if err != nil {
			return q.c.explain("DeleteMessageBatch", q.name, err)
		}
		done := make([]bool, n)
		for _, s := range out.Successful {
			if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i < n {
				done[i] = true
			}
		}
		for i := range done {
			if done[i] {
				continue
			}
			// Failed or unreported: once more on its own.
			cctx, cancel := context.WithTimeout(ctx, q.c.timeout)
			_, err := q.c.sdk.DeleteMessage(cctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receipts[i])})
			cancel()
			if err != nil && !isGoneReceipt(err) {
				return q.c.explain("DeleteMessage", q.name, err)
			}
		}
		receipts = receipts[n:]
	}
	return nil
}

func (q *queue) Counts(ctx context.Context) (Counts, error) {
	cctx, cancel := context.WithTimeout(ctx, q.c.timeout)
	defer cancel()
	out, err := q.c.sdk.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return Counts{}, q.c.explain("GetQueueAttributes", q.name, err)
	}
	n := func(a types.QueueAttributeName) int64 {
		v, _ := strconv.ParseInt(out.Attributes[string(a)], 10, 64)
		return v
	}
	return Counts{Visible: n(types.QueueAttributeNameApproximateNumberOfMessages),
		NotVisible: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		Delayed:    n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)}, nil
}

func attrs(m map[string]Attr) map[string]types.MessageAttributeValue {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]types.MessageAttributeValue, len(m))
	for k, a := range m {
		dt := "String"
		if a.Number {
			dt = "Number"
		}
		out[k] = types.MessageAttributeValue{DataType: aws.String(dt), StringValue: aws.String(a.Value)}
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// Class is what to do about an SQS error.
type Class int

// The classes.
const (
	// Retry: the service or the network failed; wait and send again.
	Retry Class = iota
	// Reject: the service refuses this item (too large, invalid
	// characters, a bad parameter): it will never take it.
	Reject
	// Fatal: credentials, permissions, a missing queue: an operator must
	// act; nothing is lost (the items stay in flight on legacy).
	Fatal
)

func (c Class) String() string {
	switch c {
	case Retry:
		return "unavailable"
	case Reject:
		return "rejected"
	}
	return "failed"
}

// Error is an SQS failure explained for an operator.
type Error struct {
	Op       string // SendMessageBatch, ...
	Queue    string
	Endpoint string
	Class    Class
	Code     string // the service's ErrorCode(), without the AWS.SimpleQueueService. prefix
	Hint     string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sqs %s queue %s: %s %s", e.Endpoint, e.Queue, e.Op, e.Class)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return strings.ReplaceAll(b.String(), "\n", "; ")
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of an error from this package; any other
// error is Retry except context cancellation, which is Fatal (stop).
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) {
		return Fatal
	}
	return Retry
}

// MaybeDelivered reports whether a failed send may still have enqueued
// the message: the request may have reached the service, and no answer
// said it did not (a timeout, a connection cut mid-call). An error the
// service answered, or a connection never made, did not enqueue anything.
func MaybeDelivered(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return false
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

// Code returns the error code of an SQS API error, without the legacy
// "AWS.SimpleQueueService." prefix; "" for other errors.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return strings.TrimPrefix(ae.ErrorCode(), "AWS.SimpleQueueService.")
	}
	return ""
}

var (
	rejectCodes = set("InvalidMessageContents", "InvalidParameterValue", "MessageTooLong", "InvalidAttributeValue",
		"InvalidAttributeName", "BatchRequestTooLong", "TooManyEntriesInBatchRequest", "BatchEntryIdsNotDistinct",
		"EmptyBatchRequest", "InvalidBatchEntryId", "InvalidParameterCombination", "MissingParameter", "ValidationError")
	retryCodes = set("RequestThrottled", "ThrottlingException", "Throttling", "KmsThrottled", "ServiceUnavailable",
		"InternalError", "InternalFailure", "RequestTimeout", "RequestTimeoutException", "OverLimit", "GeneralError")
	fatalHints = map[string]string{
		"AccessDenied":                "grant sqs:SendMessage, ReceiveMessage, DeleteMessage, GetQueueAttributes, GetQueueUrl (and CreateQueue with create_queues); see docs/queues-sqs.md",
		"AccessDeniedException":       "grant the SQS permissions of docs/queues-sqs.md",
		"InvalidClientTokenId":        "the AWS credentials of the default chain are not valid here",
		"UnrecognizedClientException": "the AWS credentials of the default chain are not valid here",
		"SignatureDoesNotMatch":       "check the AWS secret key of the default chain",
		"ExpiredToken":                "refresh the AWS credentials (SSO login, role session)",
		"InvalidSecurity":             "use an https endpoint",
		"NonExistentQueue":            "create the queue or set create_queues: true",
		"QueueDoesNotExist":           "create the queue or set create_queues: true",
		"QueueDeletedRecently":        "wait 60 s after deleting a queue before creating it again",
	}
)

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, x := range s {
		m[x] = true
	}
	return m
}

func isNoQueue(err error) bool {
	c := Code(err)
	return c == "NonExistentQueue" || c == "QueueDoesNotExist"
}

func isGoneReceipt(err error) bool {
	c := Code(err)
	return c == "ReceiptHandleIsInvalid" || c == "MessageDoesNotExist" || c == "QueueExists" // goaws's code for a missing message
}

// explain classifies err from op on queue.
func (c *Client) explain(op, queue string, err error) error {
	e := &Error{Op: op, Queue: queue, Endpoint: c.endpoint, Err: err, Code: Code(err)}
	var re *awshttp.ResponseError
	var ae smithy.APIError
	switch {
	case errors.Is(err, context.Canceled):
		e.Class = Fatal
	case rejectCodes[e.Code]:
		e.Class = Reject
	case retryCodes[e.Code]:
		e.Class = Retry
	case fatalHints[e.Code] != "":
		e.Class, e.Hint = Fatal, fatalHints[e.Code]
	case errors.As(err, &ae):
		e.Class = Fatal
		if ae.ErrorFault() == smithy.FaultServer {
			e.Class = Retry
		}
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			e.Class = Retry
		}
	default:
		// network errors, timeouts, the SDK's retry quota: the service is
		// unreachable for now
		e.Class = Retry
	}
	if e.Err != nil && e.Code != "" {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			e.Err = errors.New(ae.ErrorMessage())
		}
	}
	return e
}

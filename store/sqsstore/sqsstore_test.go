package sqsstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

// Errors are classified by ErrorCode(), with or without the legacy
// AWS.SimpleQueueService. prefix (emulators return untyped API errors).
func TestClassify(t *testing.T) {
	c := &Client{endpoint: "http://e"}
	api := func(code string, fault smithy.ErrorFault) error {
		return &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault}
	}
	tests := []struct {
		err  error
		want Class
		hint string
	}{
		{api("InvalidMessageContents", smithy.FaultClient), Reject, ""},
		{api("AWS.SimpleQueueService.BatchRequestTooLong", smithy.FaultClient), Reject, ""},
		{api("InvalidParameterValue", smithy.FaultClient), Reject, ""},
		{api("RequestThrottled", smithy.FaultClient), Retry, ""},
		{api("SomethingNew", smithy.FaultServer), Retry, ""},
		{api("AWS.SimpleQueueService.NonExistentQueue", smithy.FaultClient), Fatal, "create_queues"},
		{api("AccessDenied", smithy.FaultClient), Fatal, "sqs:SendMessage"},
		{api("SomethingElse", smithy.FaultClient), Fatal, ""},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, Retry, ""},
		{context.Canceled, Fatal, ""},
	}
	for _, tt := range tests {
		err := c.explain("SendMessage", "q1", tt.err)
		if got := ClassOf(err); got != tt.want {
			t.Errorf("%v: class %v, want %v", tt.err, got, tt.want)
		}
		msg := err.Error()
		if !strings.Contains(msg, "sqs http://e queue q1: SendMessage") || !strings.Contains(msg, tt.hint) || strings.Contains(msg, "\n") {
			t.Errorf("%q", msg)
		}
	}
}

// A send may have enqueued the message unless the service answered or the
// connection was never made.
func TestMaybeDelivered(t *testing.T) {
	c := &Client{endpoint: "http://e"}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{c.explain("SendMessage", "q", &smithy.GenericAPIError{Code: "RequestThrottled"}), false},
		{c.explain("SendMessage", "q", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), false},
		{c.explain("SendMessage", "q", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}), true},
		{c.explain("SendMessage", "q", context.DeadlineExceeded), true},
	} {
		if got := MaybeDelivered(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}

package config

import (
	"net/url"
	"strings"
)

// SQS holds the settings of a `kind: sqs` target (the queue bucket moved to
// Amazon SQS, see docs/queues-sqs.md). Credentials never appear here: they
// come from the AWS default chain (environment, shared files, SSO, web
// identity, ECS/EC2 roles).
type SQS struct {
	Region string `mapstructure:"region" yaml:"region,omitempty"`
	// SQSEndpoint overrides the service endpoint (emulators, VPC endpoints).
	SQSEndpoint string `mapstructure:"endpoint" yaml:"endpoint,omitempty"`
	// QueueName maps a list key to its queue: "{key}" is the list key with
	// every character SQS does not accept in a queue name replaced by "-"
	// (QueueFor is the one rule). Default "{key}".
	QueueName string `mapstructure:"queue_name" yaml:"queue_name,omitempty"`
	// FIFO queues: the ".fifo" suffix is added to the name.
	FIFO bool `mapstructure:"fifo" yaml:"fifo,omitempty"`
	// CreateQueues creates missing queues (sqs:CreateQueue); otherwise a
	// missing queue stops the move before anything is moved.
	CreateQueues bool `mapstructure:"create_queues" yaml:"create_queues,omitempty"`
	// MessageGroupID (FIFO only) maps a list key to its MessageGroupId;
	// "{key}" is the list key with every character a group id may not hold
	// replaced by "-". Default "{key}": one group per list, strict order.
	MessageGroupID string `mapstructure:"message_group_id" yaml:"message_group_id,omitempty"`
	// PopFrom is the end of the lists the consumers pop from: "right"
	// (LPUSH + BRPOP, the default) or "left" (RPUSH + BLPOP). Items are
	// moved from that end, oldest first, and rollback puts them back there.
	PopFrom string `mapstructure:"pop_from" yaml:"pop_from,omitempty"`
	// DelayedSet maps a list key to the sorted set of its delayed jobs
	// (scored by due time), e.g. "{key}:delayed"; "{key}" is the list key
	// as it is. Empty: no delayed jobs.
	DelayedSet string `mapstructure:"delayed_set" yaml:"delayed_set,omitempty"`
	// DelayedScore is the unit of those scores, Unix time in "s" (default)
	// or "ms".
	DelayedScore string `mapstructure:"delayed_score" yaml:"delayed_score,omitempty"`
}

// Describe names the target for results and errors: its endpoint, else
// its region.
func (s SQS) Describe() string {
	switch {
	case s.SQSEndpoint != "":
		return "sqs " + s.SQSEndpoint
	case s.Region != "":
		return "sqs." + s.Region + " (AWS)"
	}
	return "sqs (AWS, the default chain's region)"
}

// Limits of SQS names (AWS documentation of CreateQueue and SendMessage).
const (
	SQSMaxQueueName = 80  // including the .fifo suffix
	SQSMaxGroupID   = 128 // MessageGroupId
)

// QueueFor returns the SQS queue name of list key under s: the template
// with "{key}" replaced by key, every character other than A-Z a-z 0-9 _ -
// replaced by "-", and ".fifo" appended for FIFO queues. It fails (a
// *Error) when the name exceeds SQS's 80 characters.
func (s SQS) QueueFor(key string) (string, error) {
	tmpl := s.QueueName
	if tmpl == "" {
		tmpl = "{key}"
	}
	name := strings.ReplaceAll(tmpl, "{key}", sanitize(key, queueNameChar))
	if s.FIFO {
		name += ".fifo"
	}
	if len(name) > SQSMaxQueueName {
		return "", Errorf("targets.queue.queue_name", "the queue name of list %q is %d characters (%.40s...); SQS allows %d: use a shorter queue_name",
			key, len(name), name, SQSMaxQueueName)
	}
	return name, nil
}

// GroupFor returns the MessageGroupId of list key (FIFO queues), at most
// 128 characters (a longer one is cut).
func (s SQS) GroupFor(key string) string {
	tmpl := s.MessageGroupID
	if tmpl == "" {
		tmpl = "{key}"
	}
	g := strings.ReplaceAll(tmpl, "{key}", sanitize(key, groupIDChar))
	if len(g) > SQSMaxGroupID {
		g = g[:SQSMaxGroupID]
	}
	return g
}

// DelayedFor returns the sorted set of list key's delayed jobs, "" when
// delayed_set is not set.
func (s SQS) DelayedFor(key string) string {
	if s.DelayedSet == "" {
		return ""
	}
	return strings.ReplaceAll(s.DelayedSet, "{key}", key)
}

func queueNameChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// groupIDChar: alphanumeric and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~).
func groupIDChar(b byte) bool {
	return b > ' ' && b < 0x7f
}

// sanitize replaces every byte of s that ok refuses by "-" (a multi-byte
// character becomes one "-" per byte).
func sanitize(s string, ok func(byte) bool) string {
	b := []byte(s)
	for i, c := range b {
		if !ok(c) {
			b[i] = '-'
		}
	}
	return string(b)
}

func (s SQS) validate(field string) error {
	if field != "targets.queue" {
		return Errorf(field+".kind", "sqs holds queues: only the queue bucket can go to SQS")
	}
	if s.SQSEndpoint != "" {
		u, err := url.Parse(s.SQSEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Errorf(field+".endpoint", "%q is not an http:// or https:// URL", s.SQSEndpoint)
		}
	}
	if s.QueueName != "" {
		static := strings.ReplaceAll(s.QueueName, "{key}", "")
		if strings.HasSuffix(s.QueueName, ".fifo") {
			return Errorf(field+".queue_name", "%q ends in .fifo; write the name without it and set fifo: true (redisplit adds the suffix)", s.QueueName)
		}
		for i := 0; i < len(static); i++ {
			if !queueNameChar(static[i]) {
				return Errorf(field+".queue_name", "%q holds %q; SQS queue names take only A-Z a-z 0-9 _ - (and {key} for the list key)", s.QueueName, static[i])
			}
		}
		if n := len(static) + 1 + 5*btoi(s.FIFO); n > SQSMaxQueueName {
			return Errorf(field+".queue_name", "%q is too long: SQS allows %d characters with the list key (and .fifo)", s.QueueName, SQSMaxQueueName)
		}
	}
	if s.MessageGroupID != "" {
		if !s.FIFO {
			return Errorf(field+".message_group_id", "is set but fifo is false; standard queues have no message groups")
		}
		static := strings.ReplaceAll(s.MessageGroupID, "{key}", "")
		for i := 0; i < len(static); i++ {
			if !groupIDChar(static[i]) {
				return Errorf(field+".message_group_id", "%q holds %q; a MessageGroupId takes only letters, digits and punctuation", s.MessageGroupID, static[i])
			}
		}
	}
	switch s.PopFrom {
	case "", "right", "left":
	default:
		return Errorf(field+".pop_from", "%q is not right (LPUSH + BRPOP) or left (RPUSH + BLPOP)", s.PopFrom)
	}
	switch s.DelayedScore {
	case "", "s", "ms":
	default:
		return Errorf(field+".delayed_score", "%q is not s or ms (the unit of the due times in delayed_set)", s.DelayedScore)
	}
	if s.DelayedScore != "" && s.DelayedSet == "" {
		return Errorf(field+".delayed_score", "is set but delayed_set is not")
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

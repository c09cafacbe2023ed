// Package keyname is the one JSON rule for Redis key names, which are
// binary strings: a name that is valid UTF-8 is written as "key", any other
// as "key_b64" (standard base64) instead, so that every byte survives a
// JSON report (encoding/json would replace invalid bytes with U+FFFD).
// Every JSON field holding a key name uses it: scan's report and
// --keys-out, classify, migrate's unknown patterns, rollback's dry run,
// verify's differences.
package keyname

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// JSON is a key name as JSON fields. Embed it in a struct to get "key" or
// "key_b64" beside the struct's other fields; exactly one is set (both are
// empty only for the empty name).
type JSON struct {
	Key    string `json:"key,omitempty"`
	KeyB64 string `json:"key_b64,omitempty"`
}

// Of returns the JSON form of name.
func Of(name string) JSON {
	if utf8.ValidString(name) {
		return JSON{Key: name}
	}
	return JSON{KeyB64: base64.StdEncoding.EncodeToString([]byte(name))}
}

// Name returns the exact name j holds.
func (j JSON) Name() (string, error) {
	if j.KeyB64 == "" {
		return j.Key, nil
	}
	b, err := base64.StdEncoding.DecodeString(j.KeyB64)
	if err != nil {
		return "", fmt.Errorf("key_b64: %w", err)
	}
	return string(b), nil
}

// String returns the name for humans: as is when it is printable text,
// else Go-quoted.
func (j JSON) String() string {
	name, err := j.Name()
	if err != nil {
		return fmt.Sprintf("(bad key_b64 %q)", j.KeyB64)
	}
	if j.KeyB64 != "" || !printable(name) {
		return fmt.Sprintf("%q", name)
	}
	return name
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// AppendField appends the JSON field of name, `"key":"..."` or
// `"key_b64":"..."` (no braces, no comma), for hand-written JSON lines.
func AppendField(b []byte, name string) []byte {
	if utf8.ValidString(name) {
		b = append(b, `"key":`...)
		return AppendString(b, name)
	}
	b = append(b, `"key_b64":"`...)
	b = base64.StdEncoding.AppendEncode(b, []byte(name))
	return append(b, '"')
}

// AppendString appends s, which must be valid UTF-8, as a JSON string.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			switch c {
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

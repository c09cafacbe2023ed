package scan

import "bytes"

// Value signals: what the first bytes of a value say about its workload
// (key-patterns.md, "value sniffing"). Only the kind of signal is kept, never
// the bytes: values are users' data and are neither stored nor printed.
const (
	sigSessionJSON = iota // express-session JSON: {"cookie":{...
	sigPHPSession         // PHP session encoding (name|s:..) or a Laravel session payload ("_token")
	sigJobJSON            // a list item that is a JSON job (jid, class, args, displayName, ...)
	nSignals
)

// maxSniffPerPattern is the number of keys per unknown pattern (per worker)
// whose first value bytes are read.
const maxSniffPerPattern = 3

// sniffBytes is how much of a string value is read (GETRANGE 0 sniffBytes-1).
const sniffBytes = 64

var jobFields = [][]byte{[]byte(`"jid"`), []byte(`"class"`), []byte(`"args"`), []byte(`"displayName"`),
	[]byte(`"job"`), []byte(`"task"`), []byte(`"headers"`), []byte(`"payload"`)}

// sniff returns the signal a value prefix shows, or -1. typ is the key's
// type: v is a string's first bytes or a list's first item.
func sniff(typ string, v []byte) int {
	switch typ {
	case "string":
		switch {
		case bytes.HasPrefix(v, []byte(`{"cookie":`)):
			return sigSessionJSON
		case bytes.Contains(v, []byte(`"_token"`)), phpSession(v):
			return sigPHPSession
		}
	case "list":
		if len(v) > 0 && v[0] == '{' {
			n := 0
			for _, f := range jobFields {
				if bytes.Contains(v, f) {
					n++
				}
			}
			if n >= 2 {
				return sigJobJSON
			}
		}
	}
	return -1
}

// phpSession recognises PHP's session encoding: name|s:5:"value";...
func phpSession(v []byte) bool {
	i := bytes.IndexByte(v, '|')
	if i <= 0 || i+3 > len(v) || v[i+2] != ':' {
		return false
	}
	for _, c := range v[:i] {
		if !(c == '_' || isAlnum(c)) {
			return false
		}
	}
	switch v[i+1] {
	case 's', 'a', 'i', 'b', 'd', 'O', 'N':
		return true
	}
	return false
}

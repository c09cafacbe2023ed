package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// page is the number of elements read per command in logical comparisons;
// stringChunk the bytes per GETRANGE.
const (
	page        = 500
	stringChunk = 256 << 10
)

// logicalDiff compares the content of key (of type typ on both sides) on
// legacy and on bucket's target, one page at a time, and returns where they
// first diverge, or "" when equal. Hashes, sets and sorted sets are
// compared as unordered collections: equal sizes and every legacy element
// present on the target with the same value (or score) imply equality.
// Lists and streams are compared in order. Stream consumer groups are not
// compared.
func (e *engine) logicalDiff(ctx context.Context, bucket, key, typ string) (string, error) {
	t := e.o.Targets[bucket]
	l := &legacyCmds{e: e}
	d, err := compareContent(ctx, l, t.Client, key, typ)
	if err != nil {
		if l.failed {
			return "", redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
		}
		return "", redisconn.Explain(err, "target "+bucket, t.Describe())
	}
	return d, nil
}

// legacyCmds runs legacy commands within the ops budget and remembers
// whether the error came from legacy.
type legacyCmds struct {
	e      *engine
	failed bool
}

func (l *legacyCmds) do(ctx context.Context, args ...any) *redis.Cmd {
	if err := l.e.budget.wait(ctx, 1); err != nil {
		c := redis.NewCmd(ctx, args...)
		c.SetErr(err)
		return c
	}
	c := l.e.o.Legacy.Do(ctx, args...)
	if c.Err() != nil && !errors.Is(c.Err(), redis.Nil) {
		l.failed = true
	}
	return c
}

// compareContent is logicalDiff without error attribution.
func compareContent(ctx context.Context, l *legacyCmds, t redis.UniversalClient, key, typ string) (string, error) {
	lenCmd := map[string]string{"string": "strlen", "hash": "hlen", "set": "scard", "zset": "zcard", "list": "llen", "stream": "xlen"}[typ]
	if lenCmd == "" {
		return "payloads differ (type " + typ + " has no logical comparison)", nil
	}
	ln, err := l.do(ctx, lenCmd, key).Int64()
	if err != nil {
		return "", err
	}
	tn, err := t.Do(ctx, lenCmd, key).Int64()
	if err != nil {
		return "", err
	}
	if ln != tn {
		return fmt.Sprintf("%s: legacy %d, target %d", lenCmd, ln, tn), nil
	}
	switch typ {
	case "string":
		for off := int64(0); off < ln; off += stringChunk {
			a, err := l.do(ctx, "getrange", key, off, off+stringChunk-1).Text()
			if err != nil {
				return "", err
			}
			b, err := t.GetRange(ctx, key, off, off+stringChunk-1).Result()
			if err != nil {
				return "", err
			}
			if a != b {
				return fmt.Sprintf("bytes differ at offset %d", off+int64(firstDiff(a, b))), nil
			}
		}
	case "hash", "set", "zset":
		scan := map[string]string{"hash": "hscan", "set": "sscan", "zset": "zscan"}[typ]
		cursor := "0"
		for {
			r, err := l.do(ctx, scan, key, cursor, "count", page).Slice()
			if err != nil {
				return "", err
			}
			if len(r) != 2 {
				return "", fmt.Errorf("%s: unexpected reply", scan)
			}
			cursor, _ = r[0].(string)
			items, _ := r[1].([]any)
			if d, err := checkPage(ctx, t, key, typ, items); err != nil || d != "" {
				return d, err
			}
			if cursor == "0" {
				return "", nil
			}
		}
	case "list":
		for off := int64(0); off < ln; off += page {
			a, err := l.do(ctx, "lrange", key, off, off+page-1).StringSlice()
			if err != nil {
				return "", err
			}
			b, err := t.LRange(ctx, key, off, off+page-1).Result()
			if err != nil {
				return "", err
			}
			for i := range a {
				if i >= len(b) || a[i] != b[i] {
					return fmt.Sprintf("element %d differs", off+int64(i)), nil
				}
			}
		}
	case "stream":
		start := "-"
		for {
			r, err := l.do(ctx, "xrange", key, start, "+", "count", page).Result()
			if err != nil {
				return "", err
			}
			a := streamEntries(r)
			if len(a) == 0 {
				return "", nil
			}
			b, err := t.XRangeN(ctx, key, start, "+", page).Result()
			if err != nil {
				return "", err
			}
			for i := range a {
				if i >= len(b) || a[i].id != b[i].ID {
					return fmt.Sprintf("entry %s: ids differ", a[i].id), nil
				}
				if len(a[i].fields) != 2*len(b[i].Values) {
					return fmt.Sprintf("entry %s: fields differ", a[i].id), nil
				}
				for j := 0; j+1 < len(a[i].fields); j += 2 {
					if v, ok := b[i].Values[a[i].fields[j]]; !ok || fmt.Sprint(v) != a[i].fields[j+1] {
						return fmt.Sprintf("entry %s: field %q differs", a[i].id, a[i].fields[j]), nil
					}
				}
			}
			start = "(" + a[len(a)-1].id
		}
	}
	return "", nil
}

// checkPage checks one HSCAN/SSCAN/ZSCAN page of legacy against the target.
func checkPage(ctx context.Context, t redis.UniversalClient, key, typ string, items []any) (string, error) {
	str := make([]string, len(items))
	for i, it := range items {
		str[i], _ = it.(string)
	}
	switch typ {
	case "set":
		if len(str) == 0 {
			return "", nil
		}
		ms := make([]any, len(str))
		for i, s := range str {
			ms[i] = s
		}
		in, err := t.SMIsMember(ctx, key, ms...).Result()
		if err != nil {
			return "", err
		}
		for i, ok := range in {
			if !ok {
				return fmt.Sprintf("member %q missing on target", str[i]), nil
			}
		}
	case "hash":
		var fields []string
		for i := 0; i+1 < len(str); i += 2 {
			fields = append(fields, str[i])
		}
		if len(fields) == 0 {
			return "", nil
		}
		vals, err := t.HMGet(ctx, key, fields...).Result()
		if err != nil {
			return "", err
		}
		for i, f := range fields {
			v, ok := vals[i].(string)
			if !ok {
				return fmt.Sprintf("field %q missing on target", f), nil
			}
			if v != str[2*i+1] {
				return fmt.Sprintf("field %q differs", f), nil
			}
		}
	case "zset":
		var members []any
		for i := 0; i+1 < len(str); i += 2 {
			members = append(members, str[i])
		}
		if len(members) == 0 {
			return "", nil
		}
		r, err := t.Do(ctx, append([]any{"zmscore", key}, members...)...).Slice()
		if err != nil {
			return "", err
		}
		for i := range members {
			var b float64
			var err2 error
			switch v := r[i].(type) {
			case float64: // RESP3
				b = v
			case string: // RESP2
				b, err2 = strconv.ParseFloat(v, 64)
			default:
				return fmt.Sprintf("member %q missing on target", str[2*i]), nil
			}
			a, err1 := strconv.ParseFloat(str[2*i+1], 64)
			if err1 != nil || err2 != nil || a != b {
				return fmt.Sprintf("member %q: score legacy %s, target %v", str[2*i], str[2*i+1], b), nil
			}
		}
	}
	return "", nil
}

type streamEntry struct {
	id     string
	fields []string
}

// streamEntries parses an XRANGE reply from Do.
func streamEntries(r any) []streamEntry {
	rows, _ := r.([]any)
	out := make([]streamEntry, 0, len(rows))
	for _, row := range rows {
		pair, _ := row.([]any)
		if len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		fv, _ := pair[1].([]any)
		e := streamEntry{id: id}
		for _, f := range fv {
			s, _ := f.(string)
			e.fields = append(e.fields, s)
		}
		out = append(out, e)
	}
	return out
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// wholeRead names, per type, the command that reads a small key whole.
var wholeRead = map[string]string{"string": "get", "hash": "hgetall", "set": "smembers", "zset": "zrange",
	"list": "lrange", "stream": "xrange"}

func wholeArgs(typ, key string) []any {
	switch typ {
	case "zset":
		return []any{"zrange", key, 0, -1, "withscores"}
	case "list":
		return []any{"lrange", key, 0, -1}
	case "stream":
		return []any{"xrange", key, "-", "+"}
	}
	return []any{wholeRead[typ], key}
}

// compareWhole compares small keys (types[i] on both sides) by reading each
// whole, in one pipeline per side for all of them; it returns per key where
// the content diverges, or "" when equal.
func (e *engine) compareWhole(ctx context.Context, bucket string, keys, types []string) ([]string, error) {
	read := func(c redis.Cmdable) ([]*redis.Cmd, error) {
		p := c.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		for i, k := range keys {
			cmds[i] = p.Do(ctx, wholeArgs(types[i], k)...)
		}
		if _, err := p.Exec(ctx); err != nil && !isReply(err) {
			return nil, err
		}
		return cmds, nil
	}
	if err := e.budget.wait(ctx, len(keys)); err != nil {
		return nil, err
	}
	lc, err := read(e.o.Legacy)
	if err != nil {
		return nil, redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
	}
	t := e.o.Targets[bucket]
	tc, err := read(t.Client)
	if err != nil {
		return nil, redisconn.Explain(err, "target "+bucket, t.Describe())
	}
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = diffCanonical(canonical(types[i], lc[i]), canonical(types[i], tc[i]))
	}
	return out, nil
}

// isReply reports whether err is a reply of the server (WRONGTYPE, nil...)
// rather than a failure to talk to it.
func isReply(err error) bool {
	var re redis.Error
	return errors.Is(err, redis.Nil) || errors.As(err, &re)
}

// canonical turns a whole-key reply into a comparable list of elements:
// in order for lists, streams and sorted sets (ZRANGE's order is defined by
// score then member), sorted for sets and hashes. RESP2 and RESP3 replies
// give the same result.
func canonical(typ string, c *redis.Cmd) []string {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return []string{"(absent)"}
	}
	if err != nil {
		return []string{"(error) " + err.Error()}
	}
	str := func(x any) string {
		switch y := x.(type) {
		case string:
			return y
		case float64:
			return strconv.FormatFloat(y, 'g', -1, 64)
		case int64:
			return strconv.FormatInt(y, 10)
		}
		return fmt.Sprint(x)
	}
	var out []string
	switch typ {
	case "string":
		return []string{str(v)}
	case "hash":
		switch m := v.(type) {
		case map[any]any:
			for k, x := range m {
				out = append(out, str(k)+"="+str(x))
			}
		case []any:
			for i := 0; i+1 < len(m); i += 2 {
				out = append(out, str(m[i])+"="+str(m[i+1]))
			}
		}
		sort.Strings(out)
	case "set":
		switch m := v.(type) {
		case []any:
			for _, x := range m {
				out = append(out, str(x))
			}
		case map[any]any: // RESP3 set type
			for x := range m {
				out = append(out, str(x))
			}
		}
		sort.Strings(out)
	case "zset":
		m, _ := v.([]any)
		for i := 0; i < len(m); i++ {
			if pair, ok := m[i].([]any); ok && len(pair) == 2 { // RESP3
				out = append(out, str(pair[0])+" score "+score(str(pair[1])))
				continue
			}
			if i+1 < len(m) { // RESP2: member, score
				out = append(out, str(m[i])+" score "+score(str(m[i+1])))
				i++
			}
		}
	case "list":
		m, _ := v.([]any)
		for _, x := range m {
			out = append(out, str(x))
		}
	case "stream":
		for _, en := range streamEntries(v) {
			out = append(out, "entry "+en.id+" "+strings.Join(en.fields, "\x00"))
		}
	}
	return out
}

// score normalises a score's text ("1" and "1.0" are one score).
func score(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// diffCanonical says where two canonical forms first differ ("" if equal).
func diffCanonical(a, b []string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("element %d: legacy %.60q, target %.60q", i, a[i], b[i])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("legacy has %d elements, target %d", len(a), len(b))
	}
	return ""
}

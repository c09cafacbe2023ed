package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Versions.
//
// Every key of the load has one writer (a generator worker or a library
// writer owns it), so the order of its writes is the order legacy applied
// them, and each write leaves the key in a state whose version is a number
// that grows with every write to that key:
//
//	seq string     the number after the last '#' (SET, GETSET and APPEND all end the value with "#<seq>")
//	counter        the integer (INCR's reply)
//	go-redis/cache the item's Seq field
//	redis_rate     the TAT in microseconds (it grows on every allowed request)
//	hash           field "seq" (HSET)
//	list           head<<32 | tail: items are "job#<n>", LPUSH raises the head, RPOP the tail
//	set            max<<32 | min of members "m<n>": SADD raises the max, SREM the min
//	sorted set     the highest score (ZADD and ZINCRBY both leave the written member at <seq>)
//	stream         field "seq" of the last entry (XADD)
//
// A DEL leaves the key absent; its write carries the version the key had
// counted up to (Write.Absent), and the next write to the key has a higher
// one. So "the target holds this write or a later one" is a comparison of
// numbers, whatever the type, and a state-copying mirror that skips
// intermediate states still passes.

// readScript reads what the version of a key is made of, atomically: the
// type first, then the type's version fields. Set members and the last
// stream entry are reduced on the server (sets of the load stay small).
const readScript = `
local k = KEYS[1]
local t = redis.call('TYPE', k).ok
if t == 'string' then return {t, redis.call('GET', k)}
elseif t == 'hash' then return {t, redis.call('HGET', k, 'seq') or ''}
elseif t == 'list' then return {t, redis.call('LINDEX', k, 0) or '', redis.call('LINDEX', k, -1) or ''}
elseif t == 'set' then
  local hi, lo = -1, -1
  for _, m in ipairs(redis.call('SMEMBERS', k)) do
    local n = tonumber(string.sub(m, 2))
    if n then
      if hi < 0 or n > hi then hi = n end
      if lo < 0 or n < lo then lo = n end
    end
  end
  return {t, string.format('%d', hi), string.format('%d', lo)}
elseif t == 'zset' then
  local z = redis.call('ZREVRANGE', k, 0, 0, 'WITHSCORES')
  return {t, z[2] or ''}
elseif t == 'stream' then
  local e = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1)
  if e[1] then
    local f = e[1][2]
    for i = 1, #f, 2 do if f[i] == 'seq' then return {t, f[i+1]} end end
  end
  return {t, ''}
end
return {t}
`

var script = redis.NewScript(readScript)

// State is a key's state as far as versions go.
type State struct {
	Present bool
	Version uint64
	Type    string // "none" when absent
}

// decodeState turns readScript's reply for key into a State.
func decodeState(key string, reply any) (State, error) {
	arr, ok := reply.([]any)
	if !ok || len(arr) == 0 {
		return State{}, fmt.Errorf("read %q: unexpected reply %v", key, reply)
	}
	typ, _ := arr[0].(string)
	if typ == "none" {
		return State{Type: typ}, nil
	}
	f := FamilyOf(key)
	if f == nil {
		return State{}, fmt.Errorf("%q is not a load key", key)
	}
	if typ != f.Type {
		return State{}, fmt.Errorf("%q is a %s, its family %s holds %ss", key, typ, f.Name, f.Type)
	}
	str := func(i int) string {
		if i < len(arr) {
			s, _ := arr[i].(string)
			return s
		}
		return ""
	}
	v, err := decodeVersion(f.codec, str(1), str(2))
	if err != nil {
		return State{}, fmt.Errorf("%q: %w", key, err)
	}
	return State{Present: true, Version: v, Type: typ}, nil
}

// decodeVersion decodes the version fields a (and b) readScript returned.
func decodeVersion(c codec, a, b string) (uint64, error) {
	switch c {
	case codecSeqString:
		return lastSeq([]byte(a))
	case codecCounter:
		return strconv.ParseUint(a, 10, 64)
	case codecGoCache:
		var it goCacheItem
		if err := goCacheCodec.Unmarshal([]byte(a), &it); err != nil {
			return 0, fmt.Errorf("go-redis/cache item: %w", err)
		}
		return it.Seq, nil
	case codecRate:
		return rateVersion(a)
	case codecHash, codecStream:
		return strconv.ParseUint(a, 10, 64)
	case codecList:
		h, err1 := strconv.ParseUint(strings.TrimPrefix(a, "job#"), 10, 64)
		t, err2 := strconv.ParseUint(strings.TrimPrefix(b, "job#"), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("list items %q..%q", a, b)
		}
		return pack(h, t), nil
	case codecSet:
		h, err1 := strconv.ParseUint(a, 10, 64)
		l, err2 := strconv.ParseUint(b, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("set members %q..%q", a, b)
		}
		return pack(h, l), nil
	case codecZSet:
		f, err := strconv.ParseFloat(a, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("sorted set top score %q", a)
		}
		return uint64(f), nil
	}
	return 0, fmt.Errorf("codec %d", c)
}

// ReadStates reads the State of each key from c (a standalone, cluster or
// failover client), pipelined. A key whose read failed has its error in
// errs (nil when every read succeeded).
func ReadStates(ctx context.Context, c redis.UniversalClient, keys []string) ([]State, []error, error) {
	out := make([]State, len(keys))
	var errs []error
	run := func(idx []int, sha bool) ([]int, error) {
		p := c.Pipeline()
		cmds := make([]*redis.Cmd, len(idx))
		for j, i := range idx {
			if sha {
				cmds[j] = script.EvalSha(ctx, p, []string{keys[i]})
			} else {
				cmds[j] = script.Eval(ctx, p, []string{keys[i]})
			}
		}
		_, err := p.Exec(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var again []int
		for j, i := range idx {
			if e := cmds[j].Err(); e != nil {
				if sha && redis.HasErrorPrefix(e, "NOSCRIPT") {
					again = append(again, i)
					continue
				}
				if errs == nil {
					errs = make([]error, len(keys))
				}
				errs[i] = e
				continue
			}
			s, e := decodeState(keys[i], cmds[j].Val())
			if e != nil {
				if errs == nil {
					errs = make([]error, len(keys))
				}
				errs[i] = e
			}
			out[i] = s
		}
		return again, nil
	}
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	again, err := run(all, true)
	if err != nil {
		return nil, nil, err
	}
	if len(again) > 0 { // a server without the script (new, restarted, failed over): EVAL loads it
		if _, err := run(again, false); err != nil {
			return nil, nil, err
		}
	}
	return out, errs, nil
}

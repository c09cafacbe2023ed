package client

import (
	"encoding"
	"fmt"
	"strconv"
	"strings"
)

// This file is the one table of what the client knows about Redis commands:
// where their keys are, the key type a command implies (for rules that name
// a type), whether it only reads (for shadow reads), and what a command that
// names no key does. A command missing from it is refused (ErrUnroutable),
// never guessed.

// Implied types. A command that only works on one Redis type implies it: a
// write that creates a key creates it with that type, and a read of a key of
// another type fails with WRONGTYPE. So routing by the implied type routes a
// command exactly as the tool routes the key it touches.
const (
	tString = "string"
	tHash   = "hash"
	tList   = "list"
	tSet    = "set"
	tZset   = "zset"
	tStream = "stream"
	tNone   = "" // generic commands (DEL, EXPIRE, TTL, RENAME...): any type
)

// command describes one command.
type command struct {
	typ string
	// read: the command does not write; a read may be shadowed.
	read bool
	// noShadow: a read whose answer differs between two equal stores (TTL
	// moves, random members, cursors, encodings): never shadowed.
	noShadow bool
	// unordered: the reply is a set whose order may differ between two
	// equal stores; shadow comparison sorts it.
	unordered bool
	// Fixed key positions: args[first], args[first+step], ... up to last;
	// a negative last counts from the end (-1 = the last argument).
	first, last, step int
	// keys, when set, finds the keys instead (movable keys).
	keys func(a argv) ([]string, error)
	// keyless says what a command that names no key does.
	keyless keylessRule
	// refuse, when set, explains why the router refuses the command and
	// what to use instead.
	refuse string
}

type keylessRule int

const (
	keylessRefused   keylessRule = iota // ErrUnroutable
	keylessLegacy                       // runs on legacy (pub/sub, PING, TIME)
	keylessBroadcast                    // runs on every store (SCRIPT LOAD)
)

func one(typ string, read bool) command {
	return command{typ: typ, read: read, first: 1, last: 1, step: 1}
}
func span(typ string, read bool, first, last, step int) command {
	return command{typ: typ, read: read, first: first, last: last, step: step}
}
func movable(typ string, read bool, keys func(argv) ([]string, error)) command {
	return command{typ: typ, read: read, keys: keys}
}

// numkeys returns keys for "... numkeys key [key ...]" with numkeys at pos.
func numkeys(pos int) func(argv) ([]string, error) {
	return func(a argv) ([]string, error) {
		if pos >= len(a) {
			return nil, fmt.Errorf("missing numkeys")
		}
		n, err := strconv.Atoi(a.s(pos))
		if err != nil || n < 0 || pos+1+n > len(a) {
			return nil, fmt.Errorf("numkeys %q is not a count of the keys that follow", a.s(pos))
		}
		return a.strings(pos+1, pos+1+n), nil
	}
}

// destNumkeys is "dest numkeys key..." (ZUNIONSTORE and friends).
func destNumkeys(a argv) ([]string, error) {
	ks, err := numkeys(2)(a)
	if err != nil {
		return nil, err
	}
	return append([]string{a.s(1)}, ks...), nil
}

// streams is XREAD/XREADGROUP: the keys are the first half after STREAMS.
func streams(a argv) ([]string, error) {
	for i := 1; i < len(a); i++ {
		if a.is(i, "streams") {
			n := len(a) - i - 1
			if n == 0 || n%2 != 0 {
				return nil, fmt.Errorf("STREAMS needs as many IDs as keys")
			}
			return a.strings(i+1, i+1+n/2), nil
		}
	}
	return nil, fmt.Errorf("missing STREAMS")
}

// withStore is "key ... [STORE|STOREDIST dest]" (SORT, GEORADIUS).
func withStore(a argv) ([]string, error) {
	if len(a) < 2 {
		return nil, fmt.Errorf("missing key")
	}
	out := []string{a.s(1)}
	for i := 2; i+1 < len(a); i++ {
		if a.is(i, "store") || a.is(i, "storedist") {
			out = append(out, a.s(i+1))
			i++
		}
	}
	return out, nil
}

// commands maps a lower-case command name, or "name subcommand" for
// container commands, to its description. Redis 7.2's data commands.
var commands = map[string]command{
	// strings, bitmaps, HyperLogLog (a string)
	"get": one(tString, true), "getdel": one(tString, false), "getex": one(tString, false),
	"getrange": one(tString, true), "substr": one(tString, true), "getset": one(tString, false),
	"set": one(tString, false), "setnx": one(tString, false), "setex": one(tString, false),
	"psetex": one(tString, false), "setrange": one(tString, false), "append": one(tString, false),
	"strlen": one(tString, true), "incr": one(tString, false), "decr": one(tString, false),
	"incrby": one(tString, false), "decrby": one(tString, false), "incrbyfloat": one(tString, false),
	"mget": span(tString, true, 1, -1, 1), "mset": span(tString, false, 1, -1, 2),
	"msetnx": span(tString, false, 1, -1, 2), "lcs": span(tString, true, 1, 2, 1),
	"getbit": one(tString, true), "setbit": one(tString, false), "bitcount": one(tString, true),
	"bitpos": one(tString, true), "bitfield": one(tString, false), "bitfield_ro": one(tString, true),
	"bitop": span(tString, false, 2, -1, 1),
	"pfadd": one(tString, false), "pfcount": span(tString, true, 1, -1, 1), "pfmerge": span(tString, false, 1, -1, 1),

	// hashes
	"hset": one(tHash, false), "hsetnx": one(tHash, false), "hmset": one(tHash, false),
	"hget": one(tHash, true), "hmget": one(tHash, true), "hgetall": one(tHash, true),
	"hdel": one(tHash, false), "hexists": one(tHash, true), "hincrby": one(tHash, false),
	"hincrbyfloat": one(tHash, false), "hlen": one(tHash, true), "hstrlen": one(tHash, true),
	"hkeys":      {typ: tHash, read: true, unordered: true, first: 1, last: 1, step: 1},
	"hvals":      {typ: tHash, read: true, unordered: true, first: 1, last: 1, step: 1},
	"hrandfield": {typ: tHash, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"hscan":      {typ: tHash, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"hgetdel":    one(tHash, false), "hgetex": one(tHash, false), "hsetex": one(tHash, false),
	"hexpire": one(tHash, false), "hpexpire": one(tHash, false), "hexpireat": one(tHash, false),
	"hpexpireat": one(tHash, false), "hpersist": one(tHash, false),
	"httl":        {typ: tHash, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"hpttl":       {typ: tHash, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"hexpiretime": one(tHash, true), "hpexpiretime": one(tHash, true),

	// lists
	"lpush": one(tList, false), "rpush": one(tList, false), "lpushx": one(tList, false),
	"rpushx": one(tList, false), "lpop": one(tList, false), "rpop": one(tList, false),
	"llen": one(tList, true), "lrange": one(tList, true), "lindex": one(tList, true),
	"lset": one(tList, false), "linsert": one(tList, false), "lrem": one(tList, false),
	"ltrim": one(tList, false), "lpos": one(tList, true),
	"rpoplpush": span(tList, false, 1, 2, 1), "lmove": span(tList, false, 1, 2, 1),
	"blmove": span(tList, false, 1, 2, 1), "brpoplpush": span(tList, false, 1, 2, 1),
	"blpop": span(tList, false, 1, -2, 1), "brpop": span(tList, false, 1, -2, 1),
	"lmpop": movable(tList, false, numkeys(1)), "blmpop": movable(tList, false, numkeys(2)),

	// sets
	"sadd": one(tSet, false), "srem": one(tSet, false), "spop": one(tSet, false),
	"smembers":  {typ: tSet, read: true, unordered: true, first: 1, last: 1, step: 1},
	"sismember": one(tSet, true), "smismember": one(tSet, true), "scard": one(tSet, true),
	"srandmember": {typ: tSet, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"sscan":       {typ: tSet, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"smove":       span(tSet, false, 1, 2, 1),
	"sinter":      {typ: tSet, read: true, unordered: true, first: 1, last: -1, step: 1},
	"sunion":      {typ: tSet, read: true, unordered: true, first: 1, last: -1, step: 1},
	"sdiff":       {typ: tSet, read: true, unordered: true, first: 1, last: -1, step: 1},
	"sinterstore": span(tSet, false, 1, -1, 1), "sunionstore": span(tSet, false, 1, -1, 1),
	"sdiffstore": span(tSet, false, 1, -1, 1), "sintercard": movable(tSet, true, numkeys(1)),

	// sorted sets and geo (a sorted set)
	"zadd": one(tZset, false), "zrem": one(tZset, false), "zincrby": one(tZset, false),
	"zscore": one(tZset, true), "zmscore": one(tZset, true), "zcard": one(tZset, true),
	"zcount": one(tZset, true), "zlexcount": one(tZset, true), "zrange": one(tZset, true),
	"zrangebyscore": one(tZset, true), "zrangebylex": one(tZset, true), "zrevrange": one(tZset, true),
	"zrevrangebyscore": one(tZset, true), "zrevrangebylex": one(tZset, true),
	"zrank": one(tZset, true), "zrevrank": one(tZset, true),
	"zremrangebyrank": one(tZset, false), "zremrangebyscore": one(tZset, false), "zremrangebylex": one(tZset, false),
	"zpopmin": one(tZset, false), "zpopmax": one(tZset, false),
	"zrandmember": {typ: tZset, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"zscan":       {typ: tZset, read: true, noShadow: true, first: 1, last: 1, step: 1},
	"zrangestore": span(tZset, false, 1, 2, 1),
	"bzpopmin":    span(tZset, false, 1, -2, 1), "bzpopmax": span(tZset, false, 1, -2, 1),
	"zunionstore": movable(tZset, false, destNumkeys), "zinterstore": movable(tZset, false, destNumkeys),
	"zdiffstore": movable(tZset, false, destNumkeys),
	"zunion":     movable(tZset, true, numkeys(1)), "zinter": movable(tZset, true, numkeys(1)),
	"zdiff": movable(tZset, true, numkeys(1)), "zintercard": movable(tZset, true, numkeys(1)),
	"zmpop": movable(tZset, false, numkeys(1)), "bzmpop": movable(tZset, false, numkeys(2)),
	"geoadd": one(tZset, false), "geodist": one(tZset, true), "geohash": one(tZset, true),
	"geopos": one(tZset, true), "geosearch": one(tZset, true), "geosearchstore": span(tZset, false, 1, 2, 1),
	"georadius": movable(tZset, false, withStore), "georadiusbymember": movable(tZset, false, withStore),
	"georadius_ro": one(tZset, true), "georadiusbymember_ro": one(tZset, true),

	// streams
	"xadd": one(tStream, false), "xlen": one(tStream, true), "xrange": one(tStream, true),
	"xrevrange": one(tStream, true), "xdel": one(tStream, false), "xtrim": one(tStream, false),
	"xack": one(tStream, false), "xclaim": one(tStream, false), "xautoclaim": one(tStream, false),
	"xpending": one(tStream, true), "xsetid": one(tStream, false),
	"xread":         {typ: tStream, read: true, noShadow: true, keys: streams},
	"xreadgroup":    movable(tStream, false, streams),
	"xgroup create": span(tStream, false, 2, 2, 1), "xgroup destroy": span(tStream, false, 2, 2, 1),
	"xgroup createconsumer": span(tStream, false, 2, 2, 1), "xgroup delconsumer": span(tStream, false, 2, 2, 1),
	"xgroup setid":    span(tStream, false, 2, 2, 1),
	"xinfo stream":    {typ: tStream, read: true, noShadow: true, first: 2, last: 2, step: 1},
	"xinfo groups":    {typ: tStream, read: true, noShadow: true, first: 2, last: 2, step: 1},
	"xinfo consumers": {typ: tStream, read: true, noShadow: true, first: 2, last: 2, step: 1},

	// generic: any type
	"del": span(tNone, false, 1, -1, 1), "unlink": span(tNone, false, 1, -1, 1),
	"exists": span(tNone, true, 1, -1, 1), "touch": span(tNone, true, 1, -1, 1),
	"expire": one(tNone, false), "pexpire": one(tNone, false), "expireat": one(tNone, false),
	"pexpireat": one(tNone, false), "persist": one(tNone, false),
	"ttl":        {read: true, noShadow: true, first: 1, last: 1, step: 1},
	"pttl":       {read: true, noShadow: true, first: 1, last: 1, step: 1},
	"expiretime": one(tNone, true), "pexpiretime": one(tNone, true), "type": one(tNone, true),
	"dump":    {read: true, noShadow: true, first: 1, last: 1, step: 1},
	"restore": one(tNone, false), "rename": span(tNone, false, 1, 2, 1), "renamenx": span(tNone, false, 1, 2, 1),
	"copy": span(tNone, false, 1, 2, 1), "move": one(tNone, false),
	"sort": movable(tNone, false, withStore), "sort_ro": one(tNone, true),
	"object encoding": {read: true, noShadow: true, first: 2, last: 2, step: 1},
	"object freq":     {read: true, noShadow: true, first: 2, last: 2, step: 1},
	"object idletime": {read: true, noShadow: true, first: 2, last: 2, step: 1},
	"object refcount": {read: true, noShadow: true, first: 2, last: 2, step: 1},
	"memory usage":    {read: true, noShadow: true, first: 2, last: 2, step: 1},

	// scripts and functions: the keys are the declared KEYS
	"eval": movable(tNone, false, numkeys(2)), "evalsha": movable(tNone, false, numkeys(2)),
	"eval_ro": {read: true, noShadow: true, keys: numkeys(2)}, "evalsha_ro": {read: true, noShadow: true, keys: numkeys(2)},
	"fcall": movable(tNone, false, numkeys(2)), "fcall_ro": {read: true, noShadow: true, keys: numkeys(2)},
	"script load": {keyless: keylessBroadcast},

	// no key: legacy (pub/sub is not migrated; PING and TIME check legacy)
	"ping": {keyless: keylessLegacy}, "echo": {keyless: keylessLegacy}, "time": {keyless: keylessLegacy},
	"publish": {keyless: keylessLegacy}, "spublish": {keyless: keylessLegacy},
	"pubsub channels": {keyless: keylessLegacy}, "pubsub numsub": {keyless: keylessLegacy},
	"pubsub numpat": {keyless: keylessLegacy}, "pubsub shardchannels": {keyless: keylessLegacy},
	"pubsub shardnumsub": {keyless: keylessLegacy},

	// refused with a pointer to what to use
	"watch":   {refuse: "WATCH needs one connection to the watched keys' store: use Client.Watch"},
	"unwatch": {refuse: "WATCH needs one connection to the watched keys' store: use Client.Watch"},
	"multi":   {refuse: "use TxPipeline/TxPipelined: the transaction is routed as one"},
	"exec":    {refuse: "use TxPipeline/TxPipelined: the transaction is routed as one"},
	"discard": {refuse: "use TxPipeline/TxPipelined: the transaction is routed as one"},
	"select":  {refuse: "every store keeps the database its client was built with"},
	"migrate": {refuse: "MIGRATE moves keys between servers behind the plan's back"},
	"wait":    {refuse: "WAIT applies to one connection's writes; send it to a store directly"},
}

// containers are the commands whose second word names the subcommand.
var containers = map[string]bool{"object": true, "memory": true, "xgroup": true, "xinfo": true,
	"script": true, "pubsub": true, "function": true, "client": true, "config": true, "cluster": true,
	"command": true, "acl": true, "latency": true, "slowlog": true, "debug": true}

// argv is a command's arguments as go-redis holds them. Only the arguments
// routing looks at are converted to strings: values are never copied.
type argv []any

// s returns argument i as the bytes go-redis writes for it.
func (a argv) s(i int) string {
	switch v := a[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		if err != nil {
			return ""
		}
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

// is reports whether argument i is word, ignoring case, without converting
// an argument of another length.
func (a argv) is(i int, word string) bool {
	switch v := a[i].(type) {
	case string:
		return strings.EqualFold(v, word)
	case []byte:
		return len(v) == len(word) && strings.EqualFold(string(v), word)
	default:
		return false
	}
}

func (a argv) strings(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, a.s(i))
	}
	return out
}

// lookup returns the command of a, and its name as the table spells it.
func lookup(a argv) (command, string, bool) {
	if len(a) == 0 {
		return command{}, "", false
	}
	name := strings.ToLower(a.s(0))
	if containers[name] && len(a) > 1 {
		name += " " + strings.ToLower(a.s(1))
	}
	c, ok := commands[name]
	return c, name, ok
}

// keysOf returns the keys a names according to c.
func keysOf(c command, a argv) ([]string, error) {
	if c.keys != nil {
		return c.keys(a)
	}
	if c.first == 0 {
		return nil, nil
	}
	last := c.last
	if last < 0 {
		last = len(a) + last
	}
	if c.first >= len(a) || last < c.first {
		return nil, fmt.Errorf("missing key")
	}
	out := make([]string, 0, (last-c.first)/c.step+1)
	for i := c.first; i <= last; i += c.step {
		out = append(out, a.s(i))
	}
	return out, nil
}

package scan

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redisplit/redisplit/classify"
)

// Value signatures (key-patterns.md, "value sniffing"): what the first bytes
// of a value (and, for strings, its last byte), the field names of a hash or
// stream entry, the first item of a list or the first member of a sorted set
// say about the workload. Only the kind of signal is kept, never the bytes:
// values are users' data and are neither stored nor printed.
//
// A signature either names a bucket with a weight (a library's envelope, a
// session payload, a job), or only names a format (pickle, Marshal, msgpack,
// compression...): a format alone never decides a bucket, it is reported as
// evidence and, for strings, tells a serialised object from a counter.
const (
	sigSessionJSON    = iota // express-session JSON: {"cookie":{...
	sigPHPSession            // PHP session encoding (name|s:..) or a Laravel session payload ("_token")
	sigJobJSON               // a list item that is a JSON job (jid, class, args, displayName, ...)
	sigSessionFields         // session-shaped names inside a serialised value (_csrf_token, _auth_user_id, _permanent...)
	sigGorillaGob            // gob of map[interface{}]interface{} or map[string]interface{}: a Go session's values
	sigSCSGob                // gob of scs's {Deadline, Values} session record
	sigRailsCache            // ActiveSupport::Cache::Entry (Marshal) or the Rails 7.1 coder header
	sigGoRedisCache          // go-redis/cache: msgpack + 0x00, or s2 + 0x01
	sigKeyvJSON              // keyv / cache-manager JSON envelope {"value":...,"expires":...}
	sigCellTAT               // redis-cell / throttled GCRA state: a 19-digit integer ≈ now in ns
	sigGCRAFloat             // go-redis/redis_rate GCRA state: float seconds since 2017-01-01
	sigJobHash               // hash fields of a job or a worker heartbeat
	sigSessionHash           // hash fields of a session (Spring Session)
	sigRateHash              // hash fields of rate-limit state (tokens, tat, reset...)
	sigASPNetHash            // ASP.NET IDistributedCache entry fields (absexp, sldexp, data)
	sigJobStream             // stream entries with job fields
	sigTimeZSet              // a sorted set scored by epoch timestamps
	sigJobMember             // sorted-set members that are JSON jobs
	sigClassSession          // a serialised object whose class name says session
	sigClassQueue            // ... says job, queue, task, message
	sigClassRate             // ... says rate limit, throttle, token bucket
	sigClassCache            // ... says cache (and nothing durable)
	sigHTTPResponse          // a serialised HTTP response: status, header and body fields
	sigRateFields            // rate-limit state fields inside a serialised map (hits, tokens, tat...)
	sigCachelibPickle        // cachelib / Flask-Caching / werkzeug cache: "!" + pickle
	sigDogpileValue          // dogpile.cache CachedValue: {"ct": ..., "v": ...}| + payload
	sigExpiryHeader          // a packed binary entry header of creation and expiry times (CHI's CacheObject)
	sigSessionRecord         // a serialised map holding a "session" map and the record's creation or access time
	sigMessageMember         // sorted-set members or list items that are serialised maps (messages), also behind a nonce
	// formats only: never decide a bucket
	sigPickle
	sigMarshal
	sigPHPSerialize
	sigIgbinary
	sigJava
	sigMsgpack
	sigGob
	sigCompressed
	sigJSON
	sigBase64
	sigTimestamp
	nSignals
)

// signature describes one value signal: its text in the evidence, and the
// bucket it is evidence for ("" for a format) with its weight.
type signature struct {
	desc   string
	bucket classify.Bucket
	weight float64
}

var signatures = [nSignals]signature{
	sigSessionJSON:    {"express-session JSON ({\"cookie\":...})", classify.Session, 0.5},
	sigPHPSession:     {"PHP session encoding (name|s:...) or a Laravel session payload (_token)", classify.Session, 0.5},
	sigJobJSON:        {"JSON jobs (jid/class/args, body/headers/properties, displayName/job...)", classify.Queue, 0.5},
	sigSessionFields:  {"session fields in the serialised value (_csrf_token, _auth_user_id, _permanent, _user_id...)", classify.Session, 0.5},
	sigGorillaGob:     {"gob of map[interface{}]interface{} or map[string]interface{} (a Go session's values: gorilla/sessions, Fiber)", classify.Session, 0.5},
	sigSCSGob:         {"gob of a {Deadline, Values} record (alexedwards/scs session)", classify.Session, 0.6},
	sigRailsCache:     {"ActiveSupport::Cache::Entry (Rails cache store)", classify.Cache, 0.6},
	sigGoRedisCache:   {"go-redis/cache envelope (msgpack or s2 + trailing compression byte)", classify.Cache, 0.6},
	sigKeyvJSON:       {"keyv/cache-manager JSON envelope ({\"value\":...,\"expires\":...})", classify.Cache, 0.6},
	sigCellTAT:        {"19-digit integer ≈ now in ns (GCRA theoretical arrival time: redis-cell, throttled)", classify.RateLimit, 0.6},
	sigGCRAFloat:      {"float ≈ seconds since 2017 (go-redis/redis_rate GCRA state)", classify.RateLimit, 0.6},
	sigJobHash:        {"job/worker hash fields (status, origin, enqueued_at, data, opts, attemptsMade, beat...)", classify.Queue, 0.5},
	sigSessionHash:    {"session hash fields (creationTime, lastAccessedTime, maxInactiveInterval, sessionAttr:*)", classify.Session, 0.6},
	sigRateHash:       {"rate-limit state fields (tokens, tat, reset, remaining, last_refill...)", classify.RateLimit, 0.5},
	sigASPNetHash:     {"ASP.NET IDistributedCache entry fields (absexp, sldexp, data)", "", 0},
	sigJobStream:      {"stream entries with job fields or JSON job envelopes (jobId, event, body/headers...)", classify.Queue, 0.5},
	sigTimeZSet:       {"sorted set scored by epoch timestamps", "", 0},
	sigJobMember:      {"sorted-set members are JSON jobs", classify.Queue, 0.4},
	sigClassSession:   {"serialised objects whose class names say session", classify.Session, 0.5},
	sigClassQueue:     {"serialised objects whose class names say job, queue or task", classify.Queue, 0.5},
	sigClassRate:      {"serialised objects whose class names say rate limit or throttle", classify.RateLimit, 0.5},
	sigClassCache:     {"serialised objects whose type names say cache and nothing durable (ResponseCache, CacheItem...)", classify.Cache, 0.4},
	sigHTTPResponse:   {"a serialised HTTP response (status, header and body fields: a response cache entry)", classify.Cache, 0.5},
	sigRateFields:     {"rate-limit state fields in the serialised value (hits, tokens, tat, remaining, allowance...)", classify.RateLimit, 0.5},
	sigCachelibPickle: {"\"!\" + Python pickle (cachelib's RedisSerializer: cachelib, Flask-Caching, werkzeug's cache)", classify.Cache, 0.6},
	sigDogpileValue:   {"dogpile.cache CachedValue ({\"ct\": creation time, \"v\": version}| + payload)", classify.Cache, 0.6},
	sigExpiryHeader:   {"a packed entry header of creation, early-expiry and expiry times before the payload (Perl CHI's cache object)", classify.Cache, 0.6},
	sigSessionRecord:  {"a session record: a \"session\" field beside the record's creation or access time (aiohttp-session)", classify.Session, 0.5},
	sigMessageMember:  {"members are serialised messages (msgpack or JSON maps, also behind a short nonce: a channel layer's queue)", classify.Queue, 0.5},
	sigPickle:         {"Python pickle", "", 0},
	sigMarshal:        {"Ruby Marshal", "", 0},
	sigPHPSerialize:   {"PHP serialize", "", 0},
	sigIgbinary:       {"PHP igbinary", "", 0},
	sigJava:           {"Java serialization (\\xAC\\xED)", "", 0},
	sigMsgpack:        {"msgpack", "", 0},
	sigGob:            {"Go gob", "", 0},
	sigCompressed:     {"compressed (zlib, gzip, lz4, snappy/s2, zstd)", "", 0},
	sigJSON:           {"JSON", "", 0},
	sigBase64:         {"base64/signed token", "", 0},
	sigTimestamp:      {"epoch timestamps", "", 0},
}

// maxSniffPerPattern is the number of keys per unknown pattern whose values
// are read, whatever the number of workers and keys.
const maxSniffPerPattern = 3

// sniffBytes is how much of a string value is read (GETRANGE 0 sniffBytes-1);
// its last byte is read too (GETRANGE -1 -1). 256: a pickled HTTP response
// (requests-cache) names its headers past byte 128, and a read is still
// one O(1) command per sampled key (at most 3 per pattern or read class).
const sniffBytes = 256

// hashFields is how many field names of a hash are read (HRANDFIELD).
const hashFields = 8

// sniffString returns the signals a string value shows: head is its first
// bytes (at most sniffBytes; the whole value when shorter), tail its last
// byte (0 when unknown). whole reports whether head is the entire value.
func sniffString(head []byte, tail byte, whole bool, add func(int)) {
	sniffStringAt(head, tail, whole, add, 0)
}

// sniffStringAt is sniffString for a value found depth wrappers deep (a
// signed token's payload, a payload behind a version header): one level at
// most.
func sniffStringAt(head []byte, tail byte, whole bool, add func(int), depth int) {
	v := head
	if len(v) == 0 {
		return
	}
	if whole && len(v) > 0 {
		tail = v[len(v)-1]
	}
	switch {
	case bytes.HasPrefix(v, []byte(`{"cookie":`)):
		add(sigSessionJSON)
		add(sigJSON)
		return
	case phpSession(v):
		add(sigPHPSession)
		return
	}
	fieldsHit := sessionFieldsIn(v)
	if depth == 0 && expiryHeader(v) {
		add(sigExpiryHeader) // the payload behind it is not sniffed: its format is the envelope's
		return
	}
	switch {
	case bytes.HasPrefix(v, []byte("\x04\x08")):
		add(sigMarshal)
		if bytes.Contains(v, []byte("ActiveSupport::Cache::Entry")) && !fieldsHit {
			add(sigRailsCache)
		}
	case bytes.HasPrefix(v, []byte("\x00\x11")) || (len(v) > 3 && (v[0] == 0x00 || v[0] == 0x01) && bytes.HasPrefix(v[1:], []byte("\x04\x08"))):
		// Rails 7.1 coder (signature \x00\x11) and :marshal_7_1 (a
		// compression flag byte before Marshal)
		add(sigRailsCache)
	case len(v) >= 2 && v[0] == 0x80 && v[1] >= 2 && v[1] <= 5:
		add(sigPickle)
	case len(v) >= 3 && v[0] == '!' && v[1] == 0x80 && v[2] >= 2 && v[2] <= 5:
		// cachelib's serializer: "!" then pickle (integers are stored raw)
		add(sigPickle)
		if !fieldsHit {
			add(sigCachelibPickle)
		}
	case dogpileValue(v):
		add(sigJSON)
		if !fieldsHit {
			add(sigDogpileValue)
		}
	case bytes.HasPrefix(v, []byte{0xac, 0xed, 0x00, 0x05}):
		add(sigJava)
	case len(v) > 4 && bytes.HasPrefix(v, []byte{0, 0, 0, 2}) && v[4] >= 0x06 && v[4] <= 0x27:
		add(sigIgbinary) // igbinary v2 header, then a type byte
	case len(v) > 4 && gobTypeDef(v):
		switch {
		case bytes.Contains(v, []byte("Deadline")) && bytes.Contains(v, []byte("Values")):
			add(sigSCSGob)
		case gorillaGob(v):
			add(sigGorillaGob) // map[interface{}|string]interface{}
		default:
			add(sigGob)
		}
		for _, name := range gobTypeNames(v) { // gob carries its Go type names
			nameWords(name, add)
		}
	case isCompressed(v):
		add(sigCompressed)
	case goRedisCache(v, tail, whole):
		add(sigGoRedisCache)
		add(sigMsgpack)
	case v[0] >= 0x80 && v[0] <= 0x9f || v[0] >= 0xdc && v[0] <= 0xdf:
		add(sigMsgpack) // fixmap, fixarray, map16/32, array16/32
	case v[0] == '{' || v[0] == '[':
		add(sigJSON)
		switch {
		case bytes.HasPrefix(v, []byte(`{"value":`)) && (bytes.Contains(v, []byte(`"expires":`)) || !whole):
			if !fieldsHit {
				add(sigKeyvJSON)
			}
		case jobJSON(v):
			add(sigJobJSON)
		}
	case phpSerialized(v):
		add(sigPHPSerialize)
		if bytes.Contains(v, []byte(`"_token"`)) {
			add(sigPHPSession)
			return
		}
	case whole && allDigitsB(v):
		switch n, _ := strconv.ParseInt(string(v), 10, 64); {
		case len(v) == 19 && nearNow(n/1e9):
			add(sigCellTAT)
		case (len(v) == 10 && nearNow(n)) || (len(v) == 13 && nearNow(n/1000)):
			add(sigTimestamp)
		}
	case whole && gcraFloat(v):
		add(sigGCRAFloat)
	case depth == 0 && signedPayload(v, whole) != nil:
		// a signed token (Django's signing, itsdangerous): what it signs
		// says what it is
		add(sigBase64)
		sniffStringAt(signedPayload(v, whole), 0, false, add, 1)
		return
	case depth == 0 && behindHeader(v) != nil:
		sniffStringAt(behindHeader(v), tail, whole, add, 1)
		return
	case base64ish(v):
		add(sigBase64)
	}
	if fieldsHit {
		add(sigSessionFields)
	}
	if serialised(v) {
		classWords(v, add)
	}
	if !jobJSON(v) {
		valueFieldSignals(valueFields(v), add)
	}
}

// serialised reports a value in a format that carries class names (PHP
// serialize and igbinary, Java serialization, Ruby Marshal, Python pickle,
// also behind cachelib's "!" or dogpile's metadata header).
func serialised(v []byte) bool {
	return bytes.HasPrefix(v, []byte("\x04\x08")) || len(v) >= 2 && v[0] == 0x80 && v[1] >= 2 && v[1] <= 5 ||
		len(v) >= 3 && v[0] == '!' && v[1] == 0x80 || dogpileValue(v) ||
		bytes.HasPrefix(v, []byte{0xac, 0xed}) || bytes.HasPrefix(v, []byte{0, 0, 0, 2}) || bytes.HasPrefix(v, []byte("O:")) ||
		bytes.HasPrefix(v, []byte("a:")) || bytes.HasPrefix(v, []byte("C:"))
}

// classWords finds qualified class names in a serialised value (Foo\Bar,
// Foo::Bar, foo.bar.Baz) and reports the durable workloads their words name
// (session, queue, rate limit; never cache: a class name is not positive
// cache evidence).
func classWords(v []byte, add func(int)) {
	isIdent := func(c byte) bool { return isAlnum(c) || c == '_' }
	for i := 0; i < len(v); {
		if !isIdent(v[i]) {
			i++
			continue
		}
		j, seps := i, 0
		for j < len(v) {
			switch {
			case isIdent(v[j]):
				j++
			case v[j] == '\\' || v[j] == '.':
				seps++
				j++
			case v[j] == ':' && j+1 < len(v) && v[j+1] == ':':
				seps++
				j += 2
			default:
				goto done
			}
		}
	done:
		if seps > 0 && j-i >= 6 {
			nameWords(v[i:j], add)
		}
		i = j + 1
	}
}

// classCacheWords are the words by which a type name says cache: fewer than
// a key's (cacheWords), since page, views, fragment are also what a record
// holds (a paginated result, a view count).
var classCacheWords = words("cache cached caches cachekey cacheitem cacheentry memo memoize memoized")

// nameWords reports the workloads the words of one type name say: session,
// queue, rate limit, or cache when it names none of those.
func nameWords(name []byte, add func(int)) {
	sess, queue, rate, cache := false, false, false, false
	for _, w := range camelWords(string(name)) {
		sess = sess || sessionWords[w]
		queue = queue || queueWords[w] || w == "message" || w == "messages"
		rate = rate || rateWords[w] || w == "bucket" && rate
		cache = cache || classCacheWords[w]
	}
	if sess {
		add(sigClassSession)
	}
	if queue {
		add(sigClassQueue)
	}
	if rate {
		add(sigClassRate)
	}
	if cache && !sess && !queue && !rate {
		add(sigClassCache)
	}
}

// gobTypeNames returns the names of the types a gob stream defines in v:
// a wireType's ArrayT, SliceT, StructT or MapT (field delta 1 to 4), then
// its CommonType (delta 1) and that one's Name (delta 1), a length-prefixed
// string: "\x03\x01\x01\x0dResponseCache". Field names (Limit, Page...)
// are not type names and are not returned.
func gobTypeNames(v []byte) [][]byte {
	var out [][]byte
	for i := 0; i+4 < len(v) && len(out) < 8; i++ {
		if v[i] >= 1 && v[i] <= 4 && v[i+1] == 1 && v[i+2] == 1 {
			if n := int(v[i+3]); n >= 1 && n < 64 && i+4+n <= len(v) {
				out = append(out, v[i+4:i+4+n])
				i += 3 + n
			}
		}
	}
	return out
}

// delimitedIdents returns the identifiers (a letter or '_', then letters,
// digits, '_') that a serialisation delimits in v: length-prefixed by one
// byte (gob, pickle's short strings, igbinary's string8, msgpack's fixstr
// after masking) or quoted (JSON, PHP serialize). At most 32.
func delimitedIdents(v []byte) [][]byte {
	var out [][]byte
	isStart := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
	ident := func(b []byte) bool {
		if len(b) < 2 || !isStart(b[0]) {
			return false
		}
		for _, c := range b {
			if !isStart(c) && !isDigit(c) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(v) && len(out) < 32; i++ {
		c := v[i]
		n := int(c)
		if c >= 0xa0 && c <= 0xbf { // msgpack fixstr
			n = int(c & 0x1f)
		}
		if n >= 2 && n <= 40 && i+1+n <= len(v) && ident(v[i+1:i+1+n]) {
			out = append(out, v[i+1:i+1+n])
			i += n
			continue
		}
		if c == '"' {
			if j := bytes.IndexByte(v[i+1:], '"'); j > 0 && ident(v[i+1:i+1+j]) {
				out = append(out, v[i+1:i+1+j])
				i += j + 1
			}
		}
	}
	return out
}

// valueFields returns the field names a value's first bytes carry when it
// is a map or an object in a serialisation (msgpack, JSON, gob, pickle,
// igbinary, PHP serialize), else nil. Keys and string values both appear:
// the vocabularies below are of field names that values rarely spell.
func valueFields(v []byte) [][]byte {
	if len(v) < 2 {
		return nil
	}
	switch c := v[0]; {
	case c >= 0x80 && c <= 0x8f || c == 0xde || c == '{' || serialised(v) || len(v) > 4 && gobTypeDef(v):
		return delimitedIdents(v)
	}
	return nil
}

// rateField says whether a field name (or one of its camel-case words)
// belongs to rate-limit state: strongly (tokens, tat, hits, remaining,
// allowance, refill...) or weakly (reset, count, window, limit, ts). One
// vocabulary for hash fields and serialised maps.
func rateField(f []byte) (strong, weak bool) {
	isStrong := func(w string) bool {
		switch w {
		case "tokens", "tat", "allowance", "last_refill", "refill", "remaining", "refilled_at", "hits":
			return true
		}
		return false
	}
	isWeak := func(w string) bool {
		switch w {
		case "reset", "count", "window", "limit", "ts":
			return true
		}
		return false
	}
	if isStrong(string(f)) {
		return true, false
	}
	if isWeak(string(f)) {
		return false, true
	}
	for _, w := range camelWords(string(f)) {
		if isStrong(w) {
			return true, false
		}
	}
	return false, false
}

// valueFieldSignals reports what the field names of a serialised map say: an
// HTTP response (a body field with a header field and a status or another
// field of a response object, or with two such fields: what response
// caches store), or rate-limit state
// (sniffFields' vocabulary).
func valueFieldSignals(fields [][]byte, add func(int)) {
	if len(fields) == 0 {
		return
	}
	status, header, body, rate, rateStrong := false, false, false, 0, 0
	session, stamp := false, false
	extra := map[string]bool{}
	for _, f := range fields {
		// a private attribute (_content, _headers) is the field it stores
		switch strings.ToLower(strings.TrimLeft(string(f), "_")) {
		case "session", "session_data", "sessiondata":
			session = true
		case "created", "created_at", "createdat", "accessed", "accessed_at", "last_access", "last_accessed", "lastaccess":
			stamp = true
		case "status", "statuscode", "status_code":
			status = true
		case "header", "headers", "ctype", "contenttype", "content_type":
			header = true
		case "body", "data", "content":
			body = true
		case "response", "reason", "elapsed", "encoding", "decode_content", "cookies", "http_version":
			// what else a response object holds; status, even headers, may
			// lie past the bytes read
			extra[strings.ToLower(string(f))] = true
		}
		strong, weak := rateField(f)
		if strong {
			rateStrong++
		}
		if strong || weak {
			rate++
		}
	}
	if body && (header && (status || len(extra) > 0) || len(extra) >= 2) {
		add(sigHTTPResponse)
	}
	if rateStrong >= 1 && rate >= 2 || rateStrong >= 2 {
		add(sigRateFields)
	}
	if session && stamp {
		add(sigSessionRecord)
	}
}

// expiryHeader recognises a packed binary header of three 32-bit Unix times
// (creation, early expiry, expiry; little- or big-endian) then a flags byte
// and a version byte of 1, as Perl CHI's cache objects begin: the creation
// time within ten years of now, creation ≤ early expiry ≤ expiry and the
// expiry after the creation. A value that says when it stops being valid is
// a cache entry; random bytes match with a probability under 2^-40.
func expiryHeader(v []byte) bool {
	if len(v) < 15 || v[13] != 1 || v[12] > 7 {
		return false
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		c, e, x := bo.Uint32(v[0:]), bo.Uint32(v[4:]), bo.Uint32(v[8:])
		if nearNow(int64(c)) && c <= e && e <= x && x > c {
			return true
		}
	}
	return false
}

// camelWords splits a qualified name into lower-case words at separators
// and case changes: "Symfony\Component\RateLimiter" → symfony, component,
// rate, limiter, ratelimiter.
func camelWords(s string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) {
		out = append(out, strings.ToLower(part))
		start := 0
		for k := 1; k < len(part); k++ {
			if part[k] >= 'A' && part[k] <= 'Z' && part[k-1] >= 'a' && part[k-1] <= 'z' {
				out = append(out, strings.ToLower(part[start:k]))
				start = k
			}
		}
		if start > 0 {
			out = append(out, strings.ToLower(part[start:]))
		}
	}
	return out
}

// sniffItem returns the signal of a list item or a sorted-set member: a
// JSON job, or a signed token whose payload is a serialised job (its
// function and arguments).
func sniffItem(typ string, v []byte, add func(int)) {
	if in := signedPayload(v, true); in != nil && serialisedJob(in) {
		v = []byte(`{"task":1,"args":1}`) // counted as the JSON job it carries
	}
	if typ == "zset" && messageMap(v) && !(len(v) > 0 && v[0] == '{' && jobJSON(v)) {
		add(sigMessageMember)
		return
	}
	if len(v) == 0 || v[0] != '{' || !jobJSON(v) {
		return
	}
	if typ == "zset" {
		add(sigJobMember)
	} else {
		add(sigJobJSON)
	}
}

// messageMap reports a serialised map at the start of v or behind a nonce of
// at most 16 bytes: a msgpack map of 1-15 entries whose first key is a fixstr
// of ≥ 3 identifier characters, or a JSON object whose first key is quoted.
// Sliding-window logs and schedules hold ids or timestamps, not maps.
func messageMap(v []byte) bool {
	if len(v) > 2 && v[0] == '{' && v[1] == '"' {
		return true
	}
	for i := 0; i <= 16 && i+2 < len(v); i++ {
		if v[i] < 0x81 || v[i] > 0x8f || v[i+1] < 0xa3 || v[i+1] > 0xbf {
			continue
		}
		n := int(v[i+1] - 0xa0)
		if i+2+n > len(v) {
			continue
		}
		ok := true
		for _, c := range v[i+2 : i+2+n] {
			if !(c == '_' || isAlnum(c)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// sniffScore notes a sorted set scored by epoch timestamps (s or ms).
func sniffScore(score []byte, add func(int)) {
	f, err := strconv.ParseFloat(string(score), 64)
	if err != nil {
		return
	}
	if nearNow(int64(f)) || nearNow(int64(f/1000)) {
		add(sigTimeZSet)
	}
}

var (
	jobFieldNames = [][]byte{[]byte(`"jid"`), []byte(`"class"`), []byte(`"args"`), []byte(`"displayName"`),
		[]byte(`"job"`), []byte(`"task"`), []byte(`"headers"`), []byte(`"payload"`), []byte(`"body"`),
		[]byte(`"properties"`), []byte(`"content-type"`), []byte(`"enqueued_at"`), []byte(`"queue"`),
		[]byte(`"attempts"`), []byte(`"retry"`), []byte(`"maxTries"`), []byte(`"kwargs"`)}
	// names a session store or a login framework puts into a session
	sessionNames = [][]byte{[]byte("_csrf_token"), []byte("csrf_token"), []byte("_token"), []byte("_auth_user_id"),
		[]byte("_auth_user_hash"), []byte("_permanent"), []byte("_user_id"), []byte("_fresh"), []byte("session_id"),
		[]byte("warden.user"), []byte("passport"), []byte("_flashes"), []byte("flash"),
		// a session record's own bookkeeping (Beaker; Spring's hash fields are sniffFields')
		[]byte("_accessed_time"), []byte("_creation_time"), []byte("lastAccessedTime")}
)

// jsonish: a JSON object starts within the first bytes (JSON itself, or a
// JSON document serialised again, e.g. PHP's s:N:"{...").
func jsonish(v []byte) bool {
	return bytes.IndexByte(v[:min(len(v), 16)], '{') >= 0
}

func jobJSON(v []byte) bool {
	n := 0
	for _, f := range jobFieldNames {
		if bytes.Contains(v, f) {
			n++
		}
	}
	return n >= 2
}

func sessionFieldsIn(v []byte) bool {
	for _, f := range sessionNames {
		if bytes.Contains(v, f) {
			return true
		}
	}
	return false
}

// sniffFields returns the signal of a hash's (or a stream entry's) field names.
func sniffFields(typ string, fields [][]byte, add func(int)) {
	job, jobStrong, sess, rate, rateStrong, asp := 0, 0, 0, 0, 0, 0
	for _, f := range fields {
		switch string(f) {
		case "enqueued_at", "origin", "attemptsMade", "processedOn", "finishedOn", "pending_since", "jid", "result_ttl",
			"failure_ttl", "worker_name", "ended_at", "exc_info", "retried_at", "failedReason", "stacktrace", "jobId", "beat", "busy", "rtt_us":
			job++
			jobStrong++
		case "return_value", "exc_string", "traceback", "date_done", "task_id":
			job++
			jobStrong++
		case "result", "type", "status", "data", "description", "timeout", "created_at", "started_at", "name", "opts", "timestamp", "delay",
			"priority", "msg", "state", "queue", "payload", "task", "event", "args", "class", "info", "quiet", "rss", "concurrency", "attempts":
			job++
		case "creationTime", "lastAccessedTime", "maxInactiveInterval":
			sess++
		case "absexp", "sldexp":
			asp++
		}
		switch strong, weak := rateField(f); {
		case strong:
			rate++
			rateStrong++
		case weak:
			rate++
		}
		if bytes.HasPrefix(f, []byte("sessionAttr:")) {
			sess++
		}
	}
	switch {
	case sess >= 2:
		add(sigSessionHash)
	case asp >= 1:
		add(sigASPNetHash)
	case rateStrong >= 1 && rate >= 2 || rateStrong >= 2:
		add(sigRateHash)
	case jobStrong >= 1 && job >= 2:
		if typ == "stream" {
			add(sigJobStream)
		} else {
			add(sigJobHash)
		}
	}
}

// gobTypeDef: a gob stream starts with a type definition message: a length
// byte, then type id -65.. encoded as 0xff 0x8N (negative, one byte).
func gobTypeDef(v []byte) bool {
	return int(v[0]) > 2 && int(v[0]) < 0x80 && (v[1] == 0x7f || v[1] == 0xff && v[2] >= 0x81 && v[2] <= 0x9f)
}

// gorillaGob: the first type definition is a map with interface{} values
// and interface{} or string keys (wireType field MapT; key type id 8 or 6,
// elem 8; the map may carry its name, "map[string]interface {}", when the
// encoding process named it): what Go session libraries keep (gorilla's
// Values, Fiber's session data), not a cached record, which is a struct.
func gorillaGob(v []byte) bool {
	i := 2 // length byte, then the (negative) type id: 0x7f, or 0xff 0x8N
	if v[1] == 0xff {
		i = 3
	}
	if i >= len(v) || v[i] != 0x04 { // MapT
		return false
	}
	head := v[i:min(len(v), i+48)]
	return bytes.Contains(head, []byte{0x01, 0x10, 0x01, 0x10, 0x00, 0x00}) || bytes.Contains(head, []byte{0x01, 0x0c, 0x01, 0x10, 0x00, 0x00})
}

func isCompressed(v []byte) bool {
	switch {
	case len(v) >= 2 && v[0] == 0x1f && v[1] == 0x8b: // gzip
		return true
	case len(v) >= 2 && v[0] == 0x78 && (v[1] == 0x01 || v[1] == 0x5e || v[1] == 0x9c || v[1] == 0xda): // zlib
		return true
	case bytes.HasPrefix(v, []byte{0x04, 0x22, 0x4d, 0x18}): // lz4 frame
		return true
	case bytes.HasPrefix(v, []byte{0x28, 0xb5, 0x2f, 0xfd}): // zstd
		return true
	case bytes.HasPrefix(v, []byte("\xff\x06\x00\x00sNaPpY")), bytes.HasPrefix(v, []byte("\xff\x06\x00\x00S2sTwO")): // snappy / s2 framed
		return true
	}
	return false
}

// goRedisCache recognises go-redis/cache's envelope: a msgpack value
// followed by one compression byte, 0x00 (none; values under 64 bytes,
// read whole) or 0x01 (an s2 block: a uvarint length, then a literal
// starting with msgpack).
func goRedisCache(v []byte, tail byte, whole bool) bool {
	if whole && len(v) >= 2 && tail == 0x00 {
		end, ok := msgpackSkip(v, 0, 0)
		return ok && end == len(v)-1
	}
	if tail != 0x01 {
		return false
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || n < 64 || n > 1<<30 || k >= len(v) {
		return false
	}
	tag := v[k]
	if tag&3 != 0 { // s2 blocks of msgpack start with a literal
		return false
	}
	i := k + 1
	switch l := tag >> 2; {
	case l < 60:
	case l == 60:
		i++
	case l == 61:
		i += 2
	default:
		return false
	}
	if i >= len(v) {
		return false
	}
	c := v[i]
	return c >= 0x80 && c <= 0x9f || c >= 0xa0 && c <= 0xbf || c == 0xdc || c == 0xdd || c == 0xde || c == 0xdf || c >= 0xd9 && c <= 0xdb
}

// msgpackSkip returns the end of the msgpack object starting at v[i].
func msgpackSkip(v []byte, i, depth int) (int, bool) {
	if i >= len(v) || depth > 16 {
		return 0, false
	}
	c := v[i]
	i++
	need := func(n int) (int, bool) { return i + n, i+n <= len(v) }
	be := func(n int) int {
		x := 0
		for k := 0; k < n; k++ {
			x = x<<8 | int(v[i+k])
		}
		return x
	}
	items := 0
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return i, true
	case c >= 0xa0 && c <= 0xbf:
		return need(int(c & 0x1f))
	case c >= 0x80 && c <= 0x8f:
		items = 2 * int(c&0x0f)
	case c >= 0x90 && c <= 0x9f:
		items = int(c & 0x0f)
	case c == 0xcc || c == 0xd0:
		return need(1)
	case c == 0xcd || c == 0xd1:
		return need(2)
	case c == 0xca || c == 0xce || c == 0xd2:
		return need(4)
	case c == 0xcb || c == 0xcf || c == 0xd3:
		return need(8)
	case c == 0xd9 || c == 0xc4:
		if i+1 > len(v) {
			return 0, false
		}
		n := be(1)
		i++
		return need(n)
	case c == 0xda || c == 0xc5:
		if i+2 > len(v) {
			return 0, false
		}
		n := be(2)
		i += 2
		return need(n)
	case c == 0xdc || c == 0xde:
		if i+2 > len(v) {
			return 0, false
		}
		items = be(2)
		i += 2
		if c == 0xde {
			items *= 2
		}
	case c == 0xd4:
		return need(2)
	case c == 0xd5:
		return need(3)
	case c == 0xd6:
		return need(5)
	case c == 0xd7:
		return need(9)
	case c == 0xc7:
		if i+1 > len(v) {
			return 0, false
		}
		n := be(1)
		i++
		return need(n + 1)
	default:
		return 0, false
	}
	for ; items > 0; items-- {
		var ok bool
		if i, ok = msgpackSkip(v, i, depth+1); !ok {
			return 0, false
		}
	}
	return i, true
}

// dogpileValue recognises dogpile.cache's serialised CachedValue: its
// metadata as JSON, {"ct": creation time, "v": format version}, then '|'
// and the payload (pickle by default).
func dogpileValue(v []byte) bool {
	if !bytes.HasPrefix(v, []byte(`{"ct": `)) {
		return false
	}
	end := bytes.Index(v[:min(len(v), 64)], []byte("}|"))
	return end > 0 && bytes.Contains(v[:end], []byte(`, "v": `))
}

// phpSerialized recognises PHP's serialize(): a:N:{, s:N:", O:N:", i:N;, d:F;, b:0;, N;
func phpSerialized(v []byte) bool {
	if len(v) >= 2 && v[0] == 'N' && v[1] == ';' {
		return true
	}
	if len(v) < 4 || v[1] != ':' {
		return false
	}
	switch v[0] {
	case 'a', 's', 'O', 'C':
		j := 2
		for j < len(v) && isDigit(v[j]) {
			j++
		}
		return j > 2 && j+1 < len(v) && v[j] == ':' && (v[j+1] == '{' || v[j+1] == '"')
	case 'i', 'd', 'b':
		j := 2
		if j < len(v) && v[j] == '-' {
			j++
		}
		for j < len(v) && (isDigit(v[j]) || v[j] == '.') {
			j++
		}
		return j > 2 && j < len(v) && v[j] == ';'
	}
	return false
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

// gcraFloat: go-redis/redis_rate stores the TAT as a float of seconds since
// 2017-01-01 (its epoch), e.g. "284012345.678901".
func gcraFloat(v []byte) bool {
	if bytes.IndexByte(v, '.') < 0 {
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return false
	}
	since2017 := float64(time.Now().Unix() - 1483228800)
	return f > since2017-30*86400 && f < since2017+30*86400
}

// nearNow: a Unix time (s) within ten years of now.
func nearNow(sec int64) bool {
	now := time.Now().Unix()
	return sec > now-10*365*86400 && sec < now+10*365*86400
}

func allDigitsB(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// base64ish: ≥ 24 characters of base64/base64url (optionally dot- or
// pipe-separated, as signed cookies are), with digits and both cases.
func base64ish(v []byte) bool {
	if len(v) < 24 {
		return false
	}
	up, low, dig := false, false, false
	for _, c := range v {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case isDigit(c):
			dig = true
		case c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.' || c == '|':
		default:
			return false
		}
	}
	return up && low && dig
}

// signedPayload returns the payload of a signed token, decoded, or nil: a
// base64url payload (after a '.' when it is zlib-compressed, as Django's
// signing marks it) of at least 12 characters, then ':' or '.', then a
// timestamp or a signature of at least 4 base64url characters. When the
// read stopped inside the payload (whole false, 24 characters or more, no
// separator yet), the payload is taken as far as it goes if it is
// compressed or decodes to a serialised value. The payload returned may be
// cut too (at most 512 bytes are inflated).
func signedPayload(v []byte, whole bool) []byte {
	compressed := len(v) > 0 && v[0] == '.'
	if compressed {
		v = v[1:]
	}
	isB64 := func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }
	i := 0
	for i < len(v) && isB64(v[i]) {
		i++
	}
	cut := !whole && i == len(v) && i >= 24 // the read stopped inside the payload
	if !cut {
		if i < 12 || i+5 > len(v) || v[i] != ':' && v[i] != '.' {
			return nil
		}
		for j := i + 1; j < i+5; j++ {
			if !isB64(v[j]) {
				return nil
			}
		}
	}
	payload := v[:i-i%4]
	if i%4 >= 2 {
		payload = v[:i] // a final partial quantum of 2 or 3 characters decodes too
	}
	dec, err := base64.RawURLEncoding.DecodeString(string(payload))
	if err != nil || len(dec) == 0 {
		return nil
	}
	if !compressed {
		if cut && !serialised(dec) && dec[0] != '{' {
			return nil // a cut run of base64 that does not decode to a serialised value
		}
		return dec
	}
	zr, err := zlib.NewReader(bytes.NewReader(dec))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(io.LimitReader(zr, 512)) // a cut stream inflates as far as it goes
	if len(out) == 0 {
		return nil
	}
	return out
}

// behindHeader returns the serialised payload behind a short version header
// ("cc=4,": up to 16 printable bytes with a digit, ending in ',' or '|'), or
// nil: a msgpack map, a pickle or a JSON object.
func behindHeader(v []byte) []byte {
	digit := false
	for i := 0; i < len(v) && i < 16; i++ {
		c := v[i]
		switch {
		case c == ',' || c == '|':
			if !digit || i == 0 || i+2 > len(v) {
				return nil
			}
			r := v[i+1:]
			if r[0] >= 0x80 && r[0] <= 0x8f || r[0] == 0xde || r[0] == 0xdf || r[0] == '{' || r[0] == 0x80 && r[1] >= 2 && r[1] <= 5 {
				return r
			}
			return nil
		case isDigit(c):
			digit = true
		case c <= ' ' || c > '~' || c == '{' || c == '"':
			return nil
		}
	}
	return nil
}

// serialisedJob reports a serialised map whose field names are a job's: a
// function or task and its arguments (two of func, task, args, kwargs,
// queue, retries, attempts, enqueued_at).
func serialisedJob(v []byte) bool {
	seen := map[string]bool{}
	for _, f := range delimitedIdents(v) {
		switch string(f) {
		case "func", "task", "args", "kwargs", "queue", "retries", "attempts", "enqueued_at":
			seen[string(f)] = true
		}
	}
	return len(seen) >= 2
}

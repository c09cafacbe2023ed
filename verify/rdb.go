package verify

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"strconv"
)

// payloadCanonical reads a DUMP payload of a hash-table-encoded collection
// (whose payload lists the elements in the server's own hash order, so that
// two servers holding the same content give different payloads) into the
// canonical form of canonical (logical.go): a set's members sorted, a
// hash's field=value pairs sorted, a sorted set's "member score S" in
// ZRANGE order. ok is false for every other encoding, or a payload it cannot
// read: the key is then compared with commands. Comparing this way costs
// neither server anything beyond the DUMP already read.
func payloadCanonical(p string) (typ string, out []string, ok bool) {
	if len(p) < 11 {
		return "", nil, false
	}
	r := &rdbReader{b: p[1 : len(p)-10]}
	var err error
	switch p[0] {
	case 2: // set, hash table
		typ, out, err = "set", nil, nil
		n := r.length()
		for i := uint64(0); i < n && r.err == nil; i++ {
			out = append(out, r.str())
		}
		sort.Strings(out)
	case 11: // set, intset: sorted integers; canonical order is textual
		typ = "set"
		out, err = intsetMembers(r.str())
		sort.Strings(out)
	case 4: // hash, hash table
		typ = "hash"
		n := r.length()
		for i := uint64(0); i < n && r.err == nil; i++ {
			f := r.str()
			out = append(out, f+"="+r.str())
		}
		sort.Strings(out)
	case 5: // sorted set, skiplist (scores as binary doubles)
		typ = "zset"
		n := r.length()
		type member struct {
			m string
			s float64
		}
		ms := make([]member, 0, min(n, 1<<16))
		for i := uint64(0); i < n && r.err == nil; i++ {
			m := r.str()
			ms = append(ms, member{m, r.double()})
		}
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].s != ms[j].s {
				return ms[i].s < ms[j].s
			}
			return ms[i].m < ms[j].m
		})
		for _, m := range ms {
			out = append(out, m.m+" score "+strconv.FormatFloat(m.s, 'g', -1, 64))
		}
	default:
		return "", nil, false
	}
	if err != nil || r.err != nil || len(r.b) != 0 {
		return "", nil, false
	}
	return typ, out, true
}

var errRDB = errors.New("unreadable RDB payload")

// rdbReader reads the RDB encoding of DUMP payloads: lengths and strings
// (plain, integer-encoded or LZF-compressed). The first error sticks.
type rdbReader struct {
	b   string
	err error
}

func (r *rdbReader) fail() {
	if r.err == nil {
		r.err = errRDB
	}
	r.b = ""
}

func (r *rdbReader) take(n uint64) string {
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// lenOrEnc reads a length, or the special encoding of a string (enc true).
func (r *rdbReader) lenOrEnc() (n uint64, enc bool) {
	h := r.take(1)
	if h == "" {
		return 0, false
	}
	switch c := h[0]; c >> 6 {
	case 0:
		return uint64(c & 0x3f), false
	case 1:
		lo := r.take(1)
		if lo == "" {
			return 0, false
		}
		return uint64(c&0x3f)<<8 | uint64(lo[0]), false
	case 2:
		switch c {
		case 0x80:
			return uint64(binary.BigEndian.Uint32([]byte(r.take(4) + "\x00\x00\x00\x00"))), false
		case 0x81:
			return binary.BigEndian.Uint64([]byte(r.take(8) + "\x00\x00\x00\x00\x00\x00\x00\x00")), false
		}
		r.fail()
		return 0, false
	default:
		return uint64(c & 0x3f), true
	}
}

func (r *rdbReader) length() uint64 {
	n, enc := r.lenOrEnc()
	if enc {
		r.fail()
	}
	return n
}

func (r *rdbReader) str() string {
	n, enc := r.lenOrEnc()
	if !enc {
		return r.take(n)
	}
	switch n {
	case 0:
		b := r.take(1)
		if b == "" {
			return ""
		}
		return strconv.FormatInt(int64(int8(b[0])), 10)
	case 1:
		b := r.take(2)
		if len(b) < 2 {
			return ""
		}
		return strconv.FormatInt(int64(int16(binary.LittleEndian.Uint16([]byte(b)))), 10)
	case 2:
		b := r.take(4)
		if len(b) < 4 {
			return ""
		}
		return strconv.FormatInt(int64(int32(binary.LittleEndian.Uint32([]byte(b)))), 10)
	case 3:
		clen, ulen := r.length(), r.length()
		c := r.take(clen)
		if r.err != nil || ulen > 512<<20 {
			r.fail()
			return ""
		}
		s, err := lzfDecompress(c, int(ulen))
		if err != nil {
			r.fail()
		}
		return s
	}
	r.fail()
	return ""
}

// double reads a binary little-endian double (RDB_TYPE_ZSET_2 scores).
func (r *rdbReader) double() float64 {
	b := r.take(8)
	if len(b) < 8 {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64([]byte(b)))
}

// intsetMembers decodes an intset blob: encoding (2, 4 or 8 bytes), count,
// then the integers, all little-endian.
func intsetMembers(b string) ([]string, error) {
	if len(b) < 8 {
		return nil, errRDB
	}
	enc := binary.LittleEndian.Uint32([]byte(b[:4]))
	n := binary.LittleEndian.Uint32([]byte(b[4:8]))
	b = b[8:]
	if (enc != 2 && enc != 4 && enc != 8) || uint64(len(b)) != uint64(n)*uint64(enc) {
		return nil, errRDB
	}
	out := make([]string, n)
	for i := range out {
		var v int64
		switch e := b[i*int(enc) : (i+1)*int(enc)]; enc {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16([]byte(e))))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32([]byte(e))))
		case 8:
			v = int64(binary.LittleEndian.Uint64([]byte(e)))
		}
		out[i] = strconv.FormatInt(v, 10)
	}
	return out, nil
}

// lzfDecompress expands LZF data (liblzf's format, as Redis writes it) to
// exactly n bytes.
func lzfDecompress(in string, n int) (string, error) {
	out := make([]byte, 0, n)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			run := ctrl + 1
			if i+run > len(in) || len(out)+run > n {
				return "", errRDB
			}
			out = append(out, in[i:i+run]...)
			i += run
			continue
		}
		length := ctrl >> 5 // back reference
		if length == 7 {
			if i >= len(in) {
				return "", errRDB
			}
			length += int(in[i])
			i++
		}
		if i >= len(in) {
			return "", errRDB
		}
		ref := len(out) - (ctrl&0x1f)<<8 - int(in[i]) - 1
		i++
		length += 2
		if ref < 0 || len(out)+length > n {
			return "", errRDB
		}
		for j := 0; j < length; j++ { // may overlap what it writes
			out = append(out, out[ref+j])
		}
	}
	if len(out) != n {
		return "", errRDB
	}
	return string(out), nil
}

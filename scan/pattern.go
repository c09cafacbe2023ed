package scan

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Placeholders a normalised pattern uses for the variable parts of key names.
const (
	PhNumber = "{n}"     // a run of decimal digits
	PhUUID   = "{uuid}"  // 8-4-4-4-12 hex
	PhHex    = "{hex}"   // hex ≥ 16 chars, or ≥ 8 chars mixing digits and a-f
	PhID     = "{id}"    // high-entropy base64/base32/url-safe token ≥ 20 chars
	PhTS     = "{ts}"    // a date (YYYY-MM-DD, YYYYMMDD, ISO 8601) or a Unix epoch (s or ms)
	PhIP     = "{ip}"    // an IPv4 or IPv6 address
	PhEmail  = "{email}" // an e-mail address
	PhPhone  = "{phone}" // an E.164 phone number (+ and 7 to 15 digits)
	PhCode   = "{code}"  // an SKU-like code: upper-case letters and digits, e.g. SKU-1234-XL, AB12CD
	PhBinary = "{bin}"   // bytes that are not printable UTF-8
	PhLong   = "{long}"  // an unrecognised segment longer than maxLiteral bytes
	// PhVar stands for a literal that varies between similar patterns merged
	// into one proposal (mergeSimilar); Normalize never emits it.
	PhVar = "{var}"
)

// maxLiteral bounds one literal segment of a pattern, so that patterns stay
// small whatever the key names.
const maxLiteral = 128

// separators, in the order a key name is split: ':' first (which also covers
// '::'), then the others inside each ':'-segment.
var separators = []byte{':', '.', '/', '|', '_', '-'}

// maxPatternParts bounds the work and the size of one pattern: the rest of a
// very long key is folded into a trailing '*'.
const maxPatternParts = 48

// Pattern is the normalised form of a key name: the variable parts replaced by
// placeholders. Keys that differ only in ids, numbers, hashes or dates share a
// pattern.
type Pattern struct {
	Text string // e.g. "cache:api:v{n}:item:{n}"
	Glob string // the Redis glob matching the pattern's keys, e.g. "cache:api:v*:item:*"
}

// normaliser builds a pattern; it is reused per goroutine to avoid allocations.
type normaliser struct {
	text, glob []byte
	parts      int
	// protected are byte ranges of the key (UUIDs, ISO dates) that separators
	// must not split; each becomes one placeholder.
	protected []span
}

type span struct {
	start, end int
	ph         string
}

// Normalize returns the pattern of key. It is a pure function of the name.
//
// Splitting: the name is split on ':' first; each segment that is not itself
// a recognised token (number, UUID, hex, id, date, IP) is split again on '.',
// then '/', '|', '_' and '-'. A {...} hash tag is one segment (its inside is
// normalised the same way), and UUIDs and ISO dates are never split by the '-'
// and ':' they contain. Digit runs inside remaining words become {n}.
func Normalize(key string) Pattern {
	var n normaliser
	n.normalize(key)
	return n.pattern()
}

// normalize computes the pattern of key into n.text and n.glob (valid until
// the next call), without allocating in the common case.
func (n *normaliser) normalize(key string) {
	n.text, n.glob, n.parts = n.text[:0], n.glob[:0], 0
	n.protected = findProtected(key, n.protected[:0])
	n.segment(key, 0, len(key), 0)
	if len(key) <= maxBareLen && (string(n.text) == PhHex || string(n.text) == PhID) {
		// a bare id: its length names its generator (PHP's 26-character
		// session ids, a 32-hex token, a 40-hex digest), so each length
		// is a pattern of its own, with its own values read and its own
		// proposal: ids of several libraries do not pool
		n.text = strconv.AppendInt(n.text[:len(n.text)-1], int64(len(key)), 10)
		n.text = append(n.text, '}')
	}
}

// maxBareLen bounds the key length a bare id's pattern names ({hex40},
// {id26}): longer bare ids share the unqualified {hex} or {id}, so the
// number of bare patterns stays small whatever the keyspace.
const maxBareLen = 64

// bareLen splits a length-qualified bare placeholder ({hex40}, {id26}) into
// its placeholder ({hex}, {id}) and length; ok is false for any other text.
func bareLen(text string) (ph string, n int, ok bool) {
	for _, base := range []string{PhHex, PhID} {
		stem := base[:len(base)-1]
		if len(text) > len(base) && strings.HasPrefix(text, stem) && text[len(text)-1] == '}' {
			if v, err := strconv.Atoi(text[len(stem) : len(text)-1]); err == nil && v > 0 && v <= maxBareLen {
				return base, v, true
			}
		}
	}
	return "", 0, false
}

func (n *normaliser) pattern() Pattern {
	return Pattern{Text: string(n.text), Glob: string(n.glob)}
}

// segment normalises key[start:end], splitting on separators[level:].
func (n *normaliser) segment(key string, start, end, level int) {
	if n.parts >= maxPatternParts {
		n.star()
		return
	}
	s := key[start:end]
	if s == "" {
		return
	}
	for _, p := range n.protected {
		if p.start == start && p.end == end {
			n.placeholder(p.ph)
			return
		}
	}
	if ph := token(s); ph != "" {
		n.placeholder(ph)
		return
	}
	// A whole hash tag: keep the braces, normalise the inside.
	if s[0] == '{' && s[len(s)-1] == '}' && closeBrace(s, 0) == len(s)-1 {
		n.literal("{")
		n.segment(key, start+1, end-1, 0)
		n.literal("}")
		return
	}
	for ; level < len(separators); level++ {
		if n.splitOn(key, start, end, separators[level], level) {
			return
		}
	}
	n.word(s)
}

// splitOn splits key[start:end] on sep, outside hash tags and protected
// spans; it reports false when sep does not occur there.
func (n *normaliser) splitOn(key string, start, end int, sep byte, level int) bool {
	next := func(i int) int { // index of the next cut at or after i, or end
		for ; i < end; i++ {
			if sp, ok := n.protectedAt(i, end); ok {
				i = sp - 1
				continue
			}
			switch key[i] {
			case '{':
				if j := closeBrace(key[:end], i); j > 0 {
					i = j
				}
			case sep:
				return i
			}
		}
		return end
	}
	c := next(start)
	if c == end {
		return false
	}
	from := start
	for c < end {
		if n.parts >= maxPatternParts {
			n.star()
			return true
		}
		n.segment(key, from, c, level+1)
		n.literal(key[c : c+1])
		from = c + 1
		c = next(from)
	}
	n.segment(key, from, end, level+1)
	return true
}

// protectedAt returns the end of the protected span starting at i.
func (n *normaliser) protectedAt(i, end int) (int, bool) {
	for _, p := range n.protected {
		if p.start == i && p.end <= end {
			return p.end, true
		}
	}
	return 0, false
}

// closeBrace returns the index of the '}' closing the '{' at s[i], or -1.
func closeBrace(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '}')
	if j < 0 {
		return -1
	}
	if strings.IndexByte(s[i+1:i+1+j], '{') >= 0 {
		return -1 // nested: not a hash tag
	}
	return i + 1 + j
}

// word emits a segment that no separator splits further.
func (n *normaliser) word(s string) {
	if !printable(s) {
		n.placeholder(PhBinary)
		return
	}
	if len(s) > maxLiteral {
		n.placeholder(PhLong)
		return
	}
	for i := 0; i < len(s); {
		if isDigit(s[i]) {
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			n.placeholder(PhNumber)
			i = j
			continue
		}
		j := i
		for j < len(s) && !isDigit(s[j]) {
			j++
		}
		n.literal(s[i:j])
		i = j
	}
}

func (n *normaliser) literal(s string) {
	n.parts++
	n.text = append(n.text, s...)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			n.glob = append(n.glob, '\\', c)
		default:
			n.glob = append(n.glob, c)
		}
	}
}

func (n *normaliser) placeholder(ph string) {
	n.parts++
	n.text = append(n.text, ph...)
	n.star()
}

func (n *normaliser) star() {
	if l := len(n.glob); l > 0 && n.glob[l-1] == '*' && (l < 2 || n.glob[l-2] != '\\') {
		return
	}
	n.glob = append(n.glob, '*')
	if n.parts >= maxPatternParts && (len(n.text) == 0 || n.text[len(n.text)-1] != '*') {
		n.text = append(n.text, '*')
	}
}

// token recognises a whole segment as a variable token and returns its
// placeholder, or "".
func token(s string) string {
	switch {
	case allDigits(s):
		if isEpoch(s) || isCompactDate(s) {
			return PhTS
		}
		return PhNumber
	case len(s) == 36 && isUUID(s, 0):
		return PhUUID
	case isIPv4(s):
		return PhIP
	case isHexToken(s):
		return PhHex
	case isRandomID(s), isShortID(s):
		return PhID
	case isPhone(s):
		return PhPhone
	case isCode(s):
		return PhCode
	}
	return ""
}

// isPhone: an E.164 number, + and 7 to 15 digits.
func isPhone(s string) bool {
	return len(s) >= 8 && len(s) <= 16 && s[0] == '+' && allDigits(s[1:])
}

// isCode recognises SKU-like codes: 4 to 32 upper-case letters, digits and
// '-', with at least one letter and one digit, starting with a letter or a
// digit (SKU-1234-XL, AB12CD, 4K-TV-55).
func isCode(s string) bool {
	if len(s) < 4 || len(s) > 32 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	digits, letters := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			digits++
		case c >= 'A' && c <= 'Z':
			letters++
		case c == '-':
		default:
			return false
		}
	}
	return digits > 0 && letters > 0
}

// isShortID recognises short random ids (base62/base36, 8 to 19
// characters): letters and digits mixed the way random draws mix them (at
// least 2 of each, 3 changes between letter and digit or between cases), and
// no run of 4 lower-case letters or of 3 upper-case ones (words, acronyms).
func isShortID(s string) bool {
	if len(s) < 8 || len(s) >= 20 {
		return false
	}
	digits, letters, changes, lowerRun, upperRun := 0, 0, 0, 0, 0
	class := func(c byte) int {
		switch {
		case isDigit(c):
			return 0
		case c >= 'a' && c <= 'z':
			return 1
		case c >= 'A' && c <= 'Z':
			return 2
		}
		return -1
	}
	prev := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		k := class(c)
		switch k {
		case -1:
			return false
		case 0:
			digits++
			lowerRun, upperRun = 0, 0
		case 1:
			letters++
			lowerRun++
			upperRun = 0
		case 2:
			letters++
			upperRun++
			lowerRun = 0
		}
		if lowerRun >= 4 || upperRun >= 3 {
			return false
		}
		if prev >= 0 && k != prev {
			changes++
		}
		prev = k
	}
	return digits >= 2 && letters >= 2 && changes >= 3
}

// findProtected finds UUIDs, ISO dates and IPv4 addresses inside key: they
// contain '-', ':' and '.' that must not split them.
func findProtected(key string, out []span) []span {
	if len(key) < 5 {
		return out
	}
	if strings.IndexByte(key, '@') >= 0 {
		out = findEmails(key, out)
	}
	if strings.Contains(key, "::") || strings.Count(key, ":") >= 7 {
		out = findIPv6(key, out)
	}
	if len(key) < 7 || strings.IndexByte(key, '-') < 0 && strings.IndexByte(key, '.') < 0 {
		return out
	}
	for i := 0; i < len(key); i++ {
		if i > 0 && (isAlnum(key[i-1]) || key[i-1] == '.') || !isHex(key[i]) {
			continue
		}
		if inSpans(out, i) {
			continue
		}
		if isUUID(key, i) && (i+36 == len(key) || !isAlnum(key[i+36])) {
			out = append(out, span{i, i + 36, PhUUID})
			i += 35
			continue
		}
		if l := isoDateAt(key, i); l > 0 {
			out = append(out, span{i, i + l, PhTS})
			i += l - 1
			continue
		}
		if l := ipv4At(key, i); l > 0 {
			out = append(out, span{i, i + l, PhIP})
			i += l - 1
		}
	}
	return out
}

func inSpans(sp []span, i int) bool {
	for _, p := range sp {
		if i >= p.start && i < p.end {
			return true
		}
	}
	return false
}

func isEmailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// findEmails protects e-mail addresses (local@domain.tld): the '.', '-' and
// '_' they contain must not split them.
func findEmails(key string, out []span) []span {
	for at := strings.IndexByte(key, '@'); at >= 0; {
		i := at
		for i > 0 && isEmailLocal(key[i-1]) {
			i--
		}
		j, dot := at+1, -1
		for j < len(key) && (isAlnum(key[j]) || key[j] == '.' || key[j] == '-') {
			if key[j] == '.' {
				dot = j
			}
			j++
		}
		for j > at+1 && (key[j-1] == '.' || key[j-1] == '-') {
			j--
		}
		tld := 0
		if dot > at+1 && dot < j {
			for k := dot + 1; k < j && (key[k] >= 'a' && key[k] <= 'z' || key[k] >= 'A' && key[k] <= 'Z'); k++ {
				tld++
			}
		}
		if i < at && tld >= 2 && tld == j-dot-1 {
			out = append(out, span{i, j, PhEmail})
		}
		next := strings.IndexByte(key[at+1:], '@')
		if next < 0 {
			break
		}
		at += 1 + next
	}
	return out
}

// findIPv6 protects IPv6 addresses: the ':' they contain must not split
// them. A candidate starts with a hex digit at the start of the name or
// after a non-alphanumeric byte, holds at least two ':' and a digit, and
// parses as an IPv6 address (net/netip); the longest candidate wins.
func findIPv6(key string, out []span) []span {
	isV6 := func(c byte) bool { return isHex(c) || c == ':' || c == '.' }
	for i := 0; i < len(key); {
		if !isV6(key[i]) {
			i++
			continue
		}
		j := i
		for j < len(key) && isV6(key[j]) {
			j++
		}
		if j < len(key) && isAlnum(key[j]) { // the run ends inside a word: drop its last group
			for j > i && key[j-1] != ':' {
				j--
			}
		}
		best, bestEnd := -1, -1
		for a := i; a < j && best < 0; a++ {
			if !isHex(key[a]) || a > 0 && isAlnum(key[a-1]) || a > i && key[a-1] != ':' {
				continue
			}
			for b := j; b > a+2; b-- {
				if b < len(key) && key[b] != ':' && isV6(key[b]) {
					continue
				}
				cand := key[a:b]
				if strings.Count(cand, ":") < 2 || strings.IndexAny(cand, "0123456789") < 0 {
					continue
				}
				if ip, err := netip.ParseAddr(cand); err == nil && ip.Is6() {
					best, bestEnd = a, b
					break
				}
			}
		}
		if best >= 0 {
			out = append(out, span{best, bestEnd, PhIP})
			i = bestEnd
			continue
		}
		i = j + 1
	}
	return out
}

// ipv4At returns the length of a dotted IPv4 address starting at s[i] and
// not followed by an alphanumeric or '.', or 0.
func ipv4At(s string, i int) int {
	j := i
	for j < len(s) && j-i < 15 && (isDigit(s[j]) || s[j] == '.') {
		j++
	}
	for j > i && s[j-1] == '.' {
		j--
	}
	if j < len(s) && (isAlnum(s[j]) || s[j] == '.') || !isIPv4(s[i:j]) {
		return 0
	}
	return j - i
}

func isUUID(s string, i int) bool {
	if len(s)-i < 36 {
		return false
	}
	for k := 0; k < 36; k++ {
		c := s[i+k]
		switch k {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// isoDateAt returns the length of an ISO 8601 date or date-time starting at
// s[i] (YYYY-MM-DD, optionally followed by THH:MM[:SS[.fff]][Z]), or 0.
func isoDateAt(s string, i int) int {
	d := func(k int) bool { return i+k < len(s) && isDigit(s[i+k]) }
	b := func(k int, c byte) bool { return i+k < len(s) && s[i+k] == c }
	if !(d(0) && d(1) && d(2) && d(3) && b(4, '-') && d(5) && d(6) && b(7, '-') && d(8) && d(9)) {
		return 0
	}
	if y := s[i : i+2]; y != "19" && y != "20" {
		return 0
	}
	l := 10
	if (b(10, 'T') || b(10, ' ')) && d(11) && d(12) && b(13, ':') && d(14) && d(15) {
		l = 16
		if b(16, ':') && d(17) && d(18) {
			l = 19
			if b(19, '.') {
				k := 20
				for d(k) {
					k++
				}
				l = k
			}
		}
		if b(l, 'Z') {
			l++
		}
	}
	if i+l < len(s) && isAlnum(s[i+l]) {
		return 0
	}
	return l
}

// isEpoch: 10 digits (seconds) or 13 digits (ms) between 2001 and 2040.
func isEpoch(s string) bool {
	if len(s) != 10 && len(s) != 13 {
		return false
	}
	v, err := strconv.ParseInt(s[:10], 10, 64)
	return err == nil && v >= 978307200 && v <= 2208988800
}

// isCompactDate: YYYYMMDD with a plausible year, month and day.
func isCompactDate(s string) bool {
	if len(s) != 8 || (s[:2] != "19" && s[:2] != "20") {
		return false
	}
	m, _ := strconv.Atoi(s[4:6])
	d, _ := strconv.Atoi(s[6:8])
	return m >= 1 && m <= 12 && d >= 1 && d <= 31
}

func isIPv4(s string) bool {
	if len(s) < 7 || len(s) > 15 {
		return false
	}
	parts, v, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || v > 255 {
				return false
			}
			parts, v, digits = parts+1, 0, 0
			continue
		}
		if !isDigit(s[i]) || digits == 3 {
			return false
		}
		v, digits = v*10+int(s[i]-'0'), digits+1
	}
	return parts == 4
}

// isHexToken: hex of ≥ 16 chars, or of ≥ 8 chars holding both a digit and a
// letter (so plain words like "deadbeef" stay words).
func isHexToken(s string) bool {
	if len(s) < 8 {
		return false
	}
	digits, letters := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			digits++
		case (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'):
			letters++
		default:
			return false
		}
	}
	return len(s) >= 16 && digits > 0 || digits > 0 && letters > 0
}

// isRandomID recognises a high-entropy token (base64, base64url, base32,
// random alphanumerics) of at least 20 chars: only token characters, at
// least 10 distinct characters, and either a digit and two letters or, with
// no digit, at least 24 chars. A name made of several '_'/'-'-separated
// pieces is not a token when one piece reads like a lowercase word of ≥ 3
// letters or an upper-case one of ≥ 4 (so "session_<id>" and
// "AIOHTTP_SESSION_<id>" are split, not eaten: a run of 4 upper-case letters
// between two separators is rarer in base64url than one of 3 lower-case).
func isRandomID(s string) bool {
	if len(s) < 20 || len(s) > 256 {
		return false
	}
	var seen [256]bool
	distinct, digits, letters := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits++
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			letters++
		case c == '+' || c == '/' || c == '=' || c == '_' || c == '-':
		default:
			return false
		}
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	if distinct < 10 || !(digits >= 1 && letters >= 2 || len(s) >= 24) {
		return false
	}
	// '/' is a base64 character but also a path separator: words between
	// slashes must be longer to count (a random run of 4 lower-case
	// letters between two '/' is rare in base64)
	minWord := 3
	if strings.IndexByte(s, '/') >= 0 {
		minWord = 4
	}
	pieces := strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' || r == '/' })
	if len(pieces) > 1 {
		for _, piece := range pieces {
			if len(piece) >= minWord && isLowerWord(piece) || len(piece) >= minWord+1 && isUpperWord(piece) {
				return false
			}
		}
	}
	return true
}

func isUpperWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isLowerWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// idRe is {id}'s regex: what isRandomID and isShortID accept, as closely as
// RE2 can say it: base64/url-safe characters, at least 8 with a digit, or
// at least 24. A wider one (any run of those characters) would match every
// one-word key (front_page, settings) and route it with a bare-{id}
// proposal.
var idRe = func() string {
	const x = `[A-Za-z0-9+/=_-]`
	alts := []string{x + `{24,}`, x + `{7,}[0-9]` + x + `*`}
	for a := 0; a < 7; a++ { // a digit after a characters, 7-a or more after it
		before := ""
		switch {
		case a == 1:
			before = x
		case a > 1:
			before = fmt.Sprintf("%s{%d}", x, a)
		}
		alts = append(alts, fmt.Sprintf("%s[0-9]%s{%d,}", before, x, 7-a))
	}
	return "(?:" + strings.Join(alts, "|") + ")"
}()

// bareRe is the regex of a length-qualified bare placeholder: exactly l
// hex digits ({hex40}), or l id characters that idRe also accepts ({id26}):
// below 24 characters that needs a digit, so a one-word key of that length
// (settings, homepage) is not matched.
func bareRe(ph string, l int) string {
	if ph == PhHex {
		return fmt.Sprintf(`[0-9a-fA-F]{%d}`, l)
	}
	const x = `[A-Za-z0-9+/=_-]`
	if l >= 24 {
		return fmt.Sprintf(`%s{%d}`, x, l)
	}
	alts := make([]string, 0, l)
	for p := 0; p < l; p++ { // the first digit at p
		alts = append(alts, fmt.Sprintf(`[A-Za-z+/=_-]{%d}[0-9]%s{%d}`, p, x, l-1-p))
	}
	return "(?:" + strings.Join(alts, "|") + ")"
}

// placeholderRe is the regular expression each placeholder stands for in a
// proposal's regex (regexOf).
var placeholderRe = map[string]string{
	PhNumber: `[0-9]+`,
	PhUUID:   `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`,
	PhHex:    `[0-9a-fA-F]{8,}`,
	PhID:     idRe,
	PhTS:     `[0-9][0-9TZ:.+ -]*`,
	PhIP:     `(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?::[0-9]{1,3}(?:\.[0-9]{1,3}){3})?)`,
	PhEmail:  `[^@\s]+@[^@\s]+`,
	PhPhone:  `\+[0-9]+`,
	PhCode:   `[A-Z0-9-]+`,
	PhBinary: `(?s:.+)`,
	PhLong:   `(?s:.+)`,
	PhVar:    `[^:]+`,
}

// regexOf returns an anchored regex for a pattern made only of placeholders
// and separators (whose glob would be a bare "*", matching every name), or
// "" when the pattern holds a literal word (its glob is specific enough).
func regexOf(text string) string {
	if text == "" || strings.HasSuffix(text, "*") {
		return ""
	}
	re, _ := patternRegex(text, false)
	return re
}

// patternRegex is the anchored regex of a pattern's text: placeholders
// their classes ({var} one segment), a final "*" anything, other bytes
// quoted. Without literals it gives up ("", false) at the first letter or
// digit outside a placeholder.
func patternRegex(text string, literals bool) (string, bool) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(text); {
		if text[i] == '{' {
			if j := strings.IndexByte(text[i:], '}'); j > 0 {
				if re, ok := placeholderRe[text[i:i+j+1]]; ok {
					b.WriteString(re)
					i += j + 1
					continue
				}
				if ph, l, ok := bareLen(text[i : i+j+1]); ok {
					b.WriteString(bareRe(ph, l))
					i += j + 1
					continue
				}
			}
		}
		switch c := text[i]; {
		case c == '*' && i == len(text)-1:
			b.WriteString("(?s:.*)")
		case !literals && isAlnum(c):
			return "", false
		default:
			b.WriteString(regexp.QuoteMeta(text[i : i+1]))
		}
		i++
	}
	b.WriteString("$")
	return b.String(), true
}

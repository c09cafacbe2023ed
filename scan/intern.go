package scan

// intern returns a constant string for the common TYPE and OBJECT ENCODING
// replies, so that per-key facts do not allocate.
func intern(b []byte) string {
	switch string(b) {
	case "string":
		return "string"
	case "hash":
		return "hash"
	case "list":
		return "list"
	case "set":
		return "set"
	case "zset":
		return "zset"
	case "stream":
		return "stream"
	case "none":
		return "none"
	case "int":
		return "int"
	case "embstr":
		return "embstr"
	case "raw":
		return "raw"
	case "listpack":
		return "listpack"
	case "quicklist":
		return "quicklist"
	case "hashtable":
		return "hashtable"
	case "intset":
		return "intset"
	case "skiplist":
		return "skiplist"
	case "ziplist":
		return "ziplist"
	}
	return string(b)
}

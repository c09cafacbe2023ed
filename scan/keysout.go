package scan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/layout/skew"
)

// KeyLine is one line of --keys-out: the facts of one key and its route.
// The name is "key" or "key_b64" (keyname.JSON); TTLMs is -1 for no expiry; Bytes is null when MEMORY USAGE was
// not run for the key (sampling or no permission); Rule is the deciding rule
// (classify.Rule.String()), "" for unknown.
type KeyLine struct {
	keyname.JSON
	Type   string `json:"type"`
	TTLMs  int64  `json:"ttl_ms"`
	Bytes  *int64 `json:"bytes"`
	Bucket string `json:"bucket"`
	Rule   string `json:"rule"`
}

// keysOut writes --keys-out in two phases, with bounded memory whatever the
// keyspace size. Phase 1 streams one line per key, routed by the rules, into
// a temporary file next to the destination while the scan runs. Proposals are
// only known once the scan ends, so phase 2 streams the temporary file again,
// re-routes the "unknown" lines with the accepted proposals (exactly as the
// plan written by --plan-out would) and renames the result into place. The
// destination appears only complete.
type keysOut struct {
	mu   sync.Mutex
	path string
	tmp  *os.File
	w    *bufio.Writer
}

func newKeysOut(path string) (*keysOut, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("keys-out: %w", err)
	}
	return &keysOut{path: path, tmp: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (k *keysOut) write(b []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.w.Write(b); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	return nil
}

func (k *keysOut) flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.w.Flush(); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	return nil
}

// abort removes the temporary files (no-op after finish).
func (k *keysOut) abort() {
	if k.tmp != nil {
		k.tmp.Close()
		os.Remove(k.tmp.Name())
	}
}

// finish runs phase 2 with the accepted proposal rules, in plan order. Each
// key phase 2 routes to the cache is added to fc (the scan counted only the
// keys the rules route there).
func (k *keysOut) finish(accepted []classify.Rule, fc *skew.Forecaster) error {
	if err := k.flush(); err != nil {
		return err
	}
	tmp := k.tmp
	defer func() { k.tmp = nil }()
	if len(accepted) == 0 {
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("keys-out: %w", err)
		}
		return k.rename(tmp.Name())
	}
	cl, err := classify.New(accepted)
	if err != nil {
		return fmt.Errorf("keys-out: proposals: %w", err)
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	out, err := os.CreateTemp(filepath.Dir(k.path), "."+filepath.Base(k.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	defer func() { out.Close(); os.Remove(out.Name()); tmp.Close(); os.Remove(tmp.Name()) }()
	w := bufio.NewWriterSize(out, 1<<20)
	sc := bufio.NewScanner(tmp)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	unknownMark := []byte(`"bucket":"unknown","rule":""}`)
	var line []byte
	for sc.Scan() {
		b := sc.Bytes()
		if len(b) < len(unknownMark) || string(b[len(b)-len(unknownMark):]) != string(unknownMark) {
			w.Write(b)
			w.WriteByte('\n')
			continue
		}
		var kl KeyLine
		if err := json.Unmarshal(b, &kl); err != nil {
			return fmt.Errorf("keys-out: re-reading %s: %w", tmp.Name(), err)
		}
		name, err := kl.Name()
		if err != nil {
			return fmt.Errorf("keys-out: re-reading %s: %w", tmp.Name(), err)
		}
		m := cl.Classify(name, kl.Type)
		if m.Rule == nil {
			w.Write(b)
			w.WriteByte('\n')
			continue
		}
		ki := KeyInfo{Key: name, Type: kl.Type, PTTL: kl.TTLMs, Bytes: -1}
		if kl.Bytes != nil {
			ki.Bytes = *kl.Bytes
		}
		line = appendKeyLine(line[:0], &ki, m.Bucket, m.Rule.String())
		if m.Bucket == classify.Cache {
			fc.Add(name, ki.Bytes)
		}
		w.Write(line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	return k.rename(out.Name())
}

func (k *keysOut) rename(from string) error {
	if err := os.Chmod(from, 0o600); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	if err := os.Rename(from, k.path); err != nil {
		return fmt.Errorf("keys-out: %w", err)
	}
	return nil
}

// appendKeyLine appends the JSON line of one key (field order of KeyLine;
// "bucket" and "rule" last, which phase 2 relies on).
func appendKeyLine(b []byte, k *KeyInfo, bucket classify.Bucket, rule string) []byte {
	b = append(b, '{')
	b = keyname.AppendField(b, k.Key)
	b = append(b, `,"type":`...)
	b = keyname.AppendString(b, k.Type)
	b = append(b, `,"ttl_ms":`...)
	b = strconv.AppendInt(b, k.PTTL, 10)
	b = append(b, `,"bytes":`...)
	if k.Bytes >= 0 {
		b = strconv.AppendInt(b, k.Bytes, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"bucket":`...)
	b = keyname.AppendString(b, string(bucket))
	b = append(b, `,"rule":`...)
	b = keyname.AppendString(b, rule)
	return append(b, "}\n"...)
}

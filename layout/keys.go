package layout

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/scan"
)

// ForecastKeys reads scan's per-key export (--keys-out: one scan.KeyLine per
// line) and forecasts how the keys of bucket spread over a cluster of
// masters split as `redis-cli --cluster create` splits it. Memory is
// bounded (package skew); the file is streamed once. A malformed line is a
// *config.Error naming its number.
func ForecastKeys(r io.Reader, bucket string, masters int) (*skew.Forecast, error) {
	f := skew.New(masters)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var kl scan.KeyLine
		if err := json.Unmarshal(b, &kl); err != nil {
			return nil, config.Errorf("--keys", "line %d is not a key export line (redisplit scan --keys-out): %v", n, err)
		}
		if kl.Bucket != bucket {
			continue
		}
		key := kl.Key
		if kl.KeyB64 != "" {
			raw, err := base64.StdEncoding.DecodeString(kl.KeyB64)
			if err != nil {
				return nil, config.Errorf("--keys", "line %d: key_b64 is not base64: %v", n, err)
			}
			key = string(raw)
		}
		bytes := int64(-1)
		if kl.Bytes != nil {
			bytes = *kl.Bytes
		}
		f.Add(key, bytes)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	fc := f.Forecast()
	return &fc, nil
}

package migrate

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/target"
)

// readScript reads a batch of keys atomically: one script call, so no write
// of the application interleaves with the reads of one key (type, absolute
// expiry from PTTL + the server's TIME, DUMP). Keys above the size
// threshold (ARGV[1] elements and ARGV[2] bytes by MEMORY USAGE; strings by
// STRLEN) come back without payload, marked big. Reply: {now_ms, entry...}
// with entry = {"none"} or {type, expire_at_ms or 0, "D", payload} or
// {type, expire_at_ms or 0, "B"}.
var readScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local big_n = tonumber(ARGV[1])
local big_b = tonumber(ARGV[2])
local out = {now}
for i, k in ipairs(KEYS) do
  local typ = redis.call('TYPE', k)['ok']
  if typ == 'none' then
    out[i+1] = {'none'}
  else
    local pttl = redis.call('PTTL', k)
    local exp = 0
    if pttl >= 0 then exp = now + pttl end
    local big = false
    if typ == 'string' then
      big = redis.call('STRLEN', k) > big_b
    else
      local n = 0
      if typ == 'hash' then n = redis.call('HLEN', k)
      elseif typ == 'list' then n = redis.call('LLEN', k)
      elseif typ == 'set' then n = redis.call('SCARD', k)
      elseif typ == 'zset' then n = redis.call('ZCARD', k)
      elseif typ == 'stream' then n = redis.call('XLEN', k) end
      if n > big_n then
        local m = redis.call('MEMORY', 'USAGE', k)
        big = m and m > big_b
      end
    end
    if big then
      out[i+1] = {typ, exp, 'B'}
    else
      out[i+1] = {typ, exp, 'D', redis.call('DUMP', k)}
    end
  end
end
return out`)

// readBatch reads keys from legacy with readScript. It returns legacy's
// clock (Unix ms) and one entry per key; nil for keys absent at read time.
func readBatch(ctx context.Context, c *redis.Client, keys []string, bigElems int, bigBytes int64) (int64, []*target.Entry, error) {
	res, err := readScript.Run(ctx, c, keys, bigElems, bigBytes).Slice()
	if err != nil {
		return 0, nil, err
	}
	if len(res) != len(keys)+1 {
		return 0, nil, fmt.Errorf("legacy: read script answered %d items for %d keys", len(res)-1, len(keys))
	}
	now, _ := res[0].(int64)
	out := make([]*target.Entry, len(keys))
	for i, r := range res[1:] {
		a, _ := r.([]any)
		if len(a) < 3 {
			continue // none
		}
		e := &target.Entry{Key: keys[i]}
		e.Type, _ = a[0].(string)
		e.ExpireAt, _ = a[1].(int64)
		if flag, _ := a[2].(string); flag == "B" {
			e.Big = true
		} else if len(a) == 4 {
			s, _ := a[3].(string)
			e.Payload = []byte(s)
		}
		out[i] = e
	}
	return now, out, nil
}

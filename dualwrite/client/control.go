package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
)

// The control key: how redisplit tells every application instance which
// store each bucket lives in. It is the contract between the tool (cutover,
// complete, rollback write it) and this client (which reads it); see
// docs/client.md.
//
//   - ControlKey is a hash on legacy. Field: the bucket name ("cache",
//     "session", "queue", "ratelimit"). Value: the JSON of a ControlValue,
//     e.g. {"phase":"cutover","epoch":7,"at":"2025-01-02T03:04:05Z"}.
//   - On every change the writer PUBLISHes the bucket name on
//     ControlChannel (on legacy).
//   - epoch increases by one with every write of a bucket's field; "at" is
//     when the phase was written (RFC 3339). SetPhase does both atomically.
//
// The key is in redisplit's own namespace ("redisplit:"), which the tool
// never migrates, compares or deletes.
const (
	ControlKey     = "redisplit:control"
	ControlChannel = "redisplit:control"
)

// ControlValue is one bucket's field of the control key.
type ControlValue struct {
	Phase state.Phase `json:"phase"`
	Epoch int64       `json:"epoch"`
	At    time.Time   `json:"at"`
	// Plan is the hash of the plan the tool routes with (optional). A client
	// routing with another plan reports it (Stats.PlanMismatch) and keeps
	// routing: it cannot know which plan is right.
	Plan string `json:"plan,omitempty"`
}

// OnTarget reports whether the application's reads and writes of the bucket
// go to its target in phase p: from cutover on (cutover, completed). In
// every other phase (planned, copying, syncing, verified, rolled-back, or no
// field at all) they go to legacy.
func OnTarget(p state.Phase) bool { return p == state.Cutover || p == state.Completed }

// knownPhase reports whether p is a phase this client understands.
func knownPhase(p state.Phase) bool {
	switch p {
	case state.Planned, state.Copying, state.Syncing, state.Verified, state.Cutover, state.Completed, state.RolledBack:
		return true
	}
	return false
}

// ParseControlValue decodes and checks one field's value.
func ParseControlValue(s string) (ControlValue, error) {
	var v ControlValue
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return ControlValue{}, fmt.Errorf("value %q is not the JSON of a control value: %v", s, err)
	}
	if !knownPhase(v.Phase) {
		return ControlValue{}, fmt.Errorf("phase %q is not one this client knows (a newer redisplit?)", v.Phase)
	}
	return v, nil
}

// ReadControl reads every bucket's field of the control key on legacy. A
// field that cannot be parsed is reported in errs and left out.
func ReadControl(ctx context.Context, legacy redis.Cmdable) (vals map[string]ControlValue, errs map[string]error, err error) {
	raw, err := legacy.HGetAll(ctx, ControlKey).Result()
	if err != nil {
		return nil, nil, err
	}
	vals = make(map[string]ControlValue, len(raw))
	for bucket, s := range raw {
		v, err := ParseControlValue(s)
		if err != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[bucket] = err
			continue
		}
		vals[bucket] = v
	}
	return vals, errs, nil
}

// setPhase writes a bucket's field with the next epoch and publishes the
// bucket's name, in one step (a script, so that two writers cannot give two
// values one epoch and a reader never sees a value before its PUBLISH is
// ordered after it).
var setPhase = redis.NewScript(`
local epoch = 0
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and tonumber(v.epoch) then epoch = tonumber(v.epoch) end
end
epoch = epoch + 1
local val = '{"phase":' .. cjson.encode(ARGV[2]) .. ',"epoch":' .. string.format('%d', epoch) ..
  ',"at":' .. cjson.encode(ARGV[3])
if ARGV[5] ~= '' then val = val .. ',"plan":' .. cjson.encode(ARGV[5]) end
val = val .. '}'
redis.call('HSET', KEYS[1], ARGV[1], val)
redis.call('PUBLISH', ARGV[4], ARGV[1])
return val
`)

// SetPhase writes bucket's phase into the control key on legacy and
// publishes the change: the one writer of the contract, for the tool's
// cutover, complete and rollback (and for tests and the example). planHash
// may be empty. It returns the value written, with its epoch. Every client
// following legacy switches within its poll interval plus one round trip
// (at once when the PUBLISH reaches it).
func SetPhase(ctx context.Context, legacy redis.Scripter, bucket string, phase state.Phase, planHash string, at time.Time) (ControlValue, error) {
	if !knownPhase(phase) {
		return ControlValue{}, fmt.Errorf("phase %q is not a phase", phase)
	}
	s, err := setPhase.Run(ctx, legacy, []string{ControlKey},
		bucket, string(phase), at.UTC().Format(time.RFC3339Nano), ControlChannel, planHash).Text()
	if err != nil {
		return ControlValue{}, fmt.Errorf("writing the control key %s field %s on legacy: %w", ControlKey, bucket, err)
	}
	return ParseControlValue(s)
}

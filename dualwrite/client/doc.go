// Package client lets a Go application route its Redis commands by
// redisplit's plan and follow each bucket's migration phase, so that the
// cutover of a bucket switches every running instance from legacy to the
// bucket's target — and a rollback switches them back — without a redeploy.
//
//	c, err := client.New(ctx, client.Options{
//		Plan:    "plan.yaml", // the file `redisplit scan --plan-out` wrote
//		Legacy:  legacy,      // the application's existing go-redis client
//		Targets: map[string]redis.UniversalClient{"cache": cacheCluster, "session": sessionFailover},
//	})
//	var rdb redis.UniversalClient = c // use it wherever the old client was used
//
// Guarantees:
//   - Routing is the tool's: the plan file's rules (first match wins, typed
//     rules by the command's implied type) and the config's unknown: bucket.
//   - A bucket's reads and writes go to legacy until its phase in the
//     control key (ControlKey on legacy) is cutover or completed, then to
//     its target; rolled-back sends them back. Every instance reads the same
//     key, so all switch together: at once on the PUBLISH, at most
//     Options.PollInterval plus one round trip to legacy after the write
//     otherwise.
//   - A command in flight finishes on the store it was sent to; a switch
//     applies to commands issued after the client observed it.
//   - Commands, transactions, scripts and WATCHes naming keys of two
//     buckets fail with ErrCrossBucket, before anything is sent.
//   - A store's failure is the caller's error: the client never retries a
//     command on another store.
//
// Importing this package imports neither cobra nor viper and does not
// change go-redis's logger. docs/client.md is the guide.
package client

package client_test

import (
	"context"
	"errors"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/dualwrite/client"
)

// The application builds its clients as before, hands them to New, and uses
// the result wherever it used its go-redis client.
func ExampleNew() {
	ctx := context.Background()
	legacy := redis.NewClient(&redis.Options{Addr: "10.0.0.5:6379"})
	sessions := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "sessions", SentinelAddrs: []string{"10.0.1.1:26379", "10.0.1.2:26379", "10.0.1.3:26379"}})
	cache := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"10.0.2.1:6379", "10.0.2.2:6379"}})

	c, err := client.New(ctx, client.Options{
		Plan:        "plan.yaml",
		Legacy:      legacy,
		Targets:     map[string]redis.UniversalClient{"session": sessions, "cache": cache},
		CloseStores: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var rdb redis.UniversalClient = c

	// A cache failure degrades to a miss; a session failure fails the request.
	page, err := rdb.Get(ctx, "cache:page:/home").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		page = "" // cache store down: render without it
	}
	if _, err := rdb.Get(ctx, "session:42").Result(); err != nil && !errors.Is(err, redis.Nil) {
		log.Printf("session store: %v", err) // the request fails
	}
	_ = page
}

package client

import (
	"crypto/tls"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Store kinds, as redisplit.yaml's targets.<bucket>.kind.
const (
	KindStandalone = "standalone"
	KindCluster    = "cluster"
	KindSentinel   = "sentinel"
)

// Endpoint describes one store with the fields of a target in
// redisplit.yaml (kind, url, addrs, master, sentinels...), so that the
// settings `redisplit cutover --dry-run` prints for a bucket can be copied
// into the application's configuration as they are.
//
//	standalone: URL (redis://[user[:password]@]host:port[/db], rediss:// for TLS)
//	cluster:    Addrs (seed nodes)
//	sentinel:   Master and Sentinels (+ DB)
type Endpoint struct {
	Kind             string   // "" = standalone
	URL              string   // standalone
	Addrs            []string // cluster seeds
	Master           string   // sentinel master name
	Sentinels        []string // sentinel addresses
	SentinelUsername string
	SentinelPassword string
	Username         string // used when the URL carries none
	Password         string // used when the URL carries none
	DB               int    // sentinel (standalone: in the URL)
	TLS              *tls.Config
}

// Connect builds the go-redis client for e: a *redis.Client, a
// *redis.ClusterClient or a sentinel-backed failover *redis.Client. It does
// not dial: the first command does.
func (e Endpoint) Connect() (redis.UniversalClient, error) {
	switch e.Kind {
	case "", KindStandalone:
		if e.URL == "" {
			return nil, fmt.Errorf("redisplit client: a standalone endpoint needs URL")
		}
		o, err := redis.ParseURL(e.URL)
		if err != nil {
			return nil, fmt.Errorf("redisplit client: endpoint URL: %w", err)
		}
		if o.Username == "" {
			o.Username = e.Username
		}
		if o.Password == "" {
			o.Password = e.Password
		}
		if e.TLS != nil {
			o.TLSConfig = e.TLS
		}
		return redis.NewClient(o), nil
	case KindCluster:
		if len(e.Addrs) == 0 {
			return nil, fmt.Errorf("redisplit client: a cluster endpoint needs Addrs (seed nodes)")
		}
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: e.Addrs, Username: e.Username,
			Password: e.Password, TLSConfig: e.TLS}), nil
	case KindSentinel:
		if e.Master == "" || len(e.Sentinels) == 0 {
			return nil, fmt.Errorf("redisplit client: a sentinel endpoint needs Master and Sentinels")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: e.Master, SentinelAddrs: e.Sentinels,
			SentinelUsername: e.SentinelUsername, SentinelPassword: e.SentinelPassword,
			Username: e.Username, Password: e.Password, DB: e.DB, TLSConfig: e.TLS}), nil
	}
	return nil, fmt.Errorf("redisplit client: endpoint kind %q is not one of standalone, cluster, sentinel", e.Kind)
}

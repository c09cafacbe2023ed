// Command redisplit splits one overloaded Redis instance into workload-specific
// stores (cache, sessions, queues, rate limits), live and with zero downtime.
package main

import (
	"os"

	"github.com/redisplit/redisplit/cmd"
)

func main() { os.Exit(cmd.Execute()) }

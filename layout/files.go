package layout

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/scan"
)

// sqsQueue is the input of `aws sqs create-queue --cli-input-json`.
type sqsQueue struct {
	QueueName  string            `json:"QueueName"`
	Attributes map[string]string `json:"Attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// queueNames derives one SQS queue per list pattern of the queue bucket
// (lists hold the items; hashes and strings beside them are a framework's
// bookkeeping), named after the pattern.
func queueNames(rep *scan.Report) [][2]string {
	var out [][2]string
	seen := map[string]bool{}
	for _, b := range rep.Buckets {
		if b.Bucket != "queue" {
			continue
		}
		for _, p := range b.TopPatterns {
			if p.Types["list"] == 0 {
				continue
			}
			n := strings.Trim(nonName.ReplaceAllString(strings.NewReplacer("{", "", "}", "").Replace(p.Pattern), "-"), "-")
			if len(n) > 65 {
				n = n[:65]
			}
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, [2]string{n, p.Pattern})
		}
	}
	if len(out) == 0 {
		out = append(out, [2]string{"redisplit-jobs", ""})
	}
	return out
}

func (l *Layout) sqsFiles() []File {
	o := l.opts.SQS
	var qs []sqsQueue
	for _, nq := range queueNames(l.rep) {
		name, dlq := nq[0], nq[0]+"-dlq"
		if !o.Standard {
			name, dlq = name+".fifo", dlq+".fifo"
		}
		tags := map[string]string{"redisplit": "targets init"}
		if nq[1] != "" {
			tags["redisplit-pattern"] = nq[1]
		}
		dead := sqsQueue{QueueName: dlq, Attributes: map[string]string{"MessageRetentionPeriod": "1209600"}, Tags: tags}
		redrive, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": fmt.Sprintf("arn:aws:sqs:%s:%s:%s", o.Region, o.Account, dlq),
			"maxReceiveCount":     strconv.Itoa(o.MaxReceiveCount),
		})
		main := sqsQueue{QueueName: name, Tags: tags, Attributes: map[string]string{
			"VisibilityTimeout":             strconv.Itoa(o.VisibilitySeconds),
			"MessageRetentionPeriod":        strconv.Itoa(o.RetentionSeconds),
			"ReceiveMessageWaitTimeSeconds": "20",
			"RedrivePolicy":                 string(redrive),
		}}
		if !o.Standard {
			for _, q := range []*sqsQueue{&dead, &main} {
				q.Attributes["FifoQueue"] = "true"
				q.Attributes["ContentBasedDeduplication"] = "false"
			}
		}
		qs = append(qs, dead, main)
	}
	js, _ := json.MarshalIndent(qs, "", "  ")
	kind := "FIFO: items keep their order per MessageGroupId and are deduplicated by the stable\n# MessageDeduplicationId redisplit sends (no content-based deduplication: two equal jobs are two jobs)."
	if o.Standard {
		kind = "standard: at-least-once delivery, best-effort order (--sqs-standard)."
	}
	script := fmt.Sprintf(`#!/bin/sh
# redisplit targets init: creates the SQS queues of sqs-queues.json (JSON allows no comments, so
# they are here), each dead-letter queue before the queue whose redrive policy names its ARN
# (arn:aws:sqs:%s:%s:...: --sqs-region, --sqs-account). Needs the aws CLI and jq.
# %s
# VisibilityTimeout %d s: longer than a job runs, or a second consumer gets it while the first
# still works. MessageRetentionPeriod %d s: keep items while consumers stall.
# ReceiveMessageWaitTimeSeconds 20: long polling, fewer empty receives. After %d receives
# without a delete an item moves to the dead-letter queue (kept 14 days) instead of looping.
set -eu
cd "$(dirname "$0")"
n=$(jq length sqs-queues.json)
i=0
while [ "$i" -lt "$n" ]; do
	aws sqs create-queue --cli-input-json "$(jq -c ".[$i]" sqs-queues.json)"
	i=$((i + 1))
done
`, o.Region, o.Account, kind, o.VisibilitySeconds, o.RetentionSeconds, o.MaxReceiveCount)
	return []File{
		{Path: "queue/sqs-queues.json", Mode: 0o644, Content: append(js, '\n')},
		{Path: "queue/create-queues.sh", Mode: 0o755, Content: []byte(script)},
	}
}

func yq(s string) string {
	b, _ := yaml.Marshal(s)
	return strings.TrimSpace(string(b))
}

func yamlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = yq(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// configFile is the targets section of redisplit.yaml (and legacy, as
// scanned).
func (l *Layout) configFile() File {
	o := l.opts
	var b strings.Builder
	b.WriteString("# redisplit targets init: the targets of the layout in this directory (docs/targets.md).\n")
	b.WriteString("# Merge it into your redisplit.yaml (plan, rules...), or pass it with --config.\n")
	if o.NoAuth {
		b.WriteString("# --no-auth: no credentials (a local trial).\n")
	} else {
		b.WriteString("# redisplit connects as its own user; each password is read from a file, never written here.\n")
	}
	if a := l.rep.Legacy.Addr; a != "" {
		b.WriteString("legacy:\n")
		b.WriteString("  # As scanned; point it at the primary if you scanned a replica. Password: REDISPLIT_LEGACY_PASSWORD.\n")
		u := "redis://" + a
		if l.rep.Legacy.DB != 0 {
			u += "/" + strconv.Itoa(l.rep.Legacy.DB)
		}
		fmt.Fprintf(&b, "  url: %s\n", yq(u))
	}
	b.WriteString("targets:\n")
	for _, bucket := range config.Buckets {
		t := l.Target(bucket)
		fmt.Fprintf(&b, "  %s:\n", bucket)
		switch t.Kind {
		case config.KindCluster:
			b.WriteString("    # Redis Cluster; every node as a seed: the client discovers the slots and follows MOVED/ASK.\n")
			fmt.Fprintf(&b, "    kind: cluster\n    addrs: %s\n", yamlList(t.Addrs))
		case config.KindSentinel:
			b.WriteString("    # Master behind Sentinel: the client asks the sentinels for the master and follows a failover.\n")
			fmt.Fprintf(&b, "    kind: sentinel\n    master: %s\n    sentinels: %s\n", yq(t.Master), yamlList(t.Sentinels))
		case config.KindSQS:
			b.WriteString("    # Amazon SQS: queue/sqs-queues.json defines the queues.\n    kind: sqs\n")
		default:
			fmt.Fprintf(&b, "    kind: standalone\n    url: %s\n", yq(t.URL))
		}
		if t.Username != "" {
			fmt.Fprintf(&b, "    username: %s\n    password_file: %s\n", yq(t.Username), yq(t.PasswordFile))
		}
	}
	return File{Path: "redisplit.yaml", Mode: 0o644, Content: []byte(b.String())}
}

// composeFile starts the same servers from the same configs.
func (l *Layout) composeFile() File {
	o := l.opts
	root := o.InstallDir
	var b strings.Builder
	b.WriteString("# redisplit targets init: this layout on one machine, from the very configs production runs\n")
	b.WriteString("# (docker compose up -d; cache-create then creates the cluster). redis-server is the entrypoint,\n")
	b.WriteString("# not the image's script: each config is used as it is. The layout is mounted where the configs\n")
	if o.Bind != "" {
		b.WriteString("# expect it. Host networking: every server listens on the address and port of its config, and\n")
		b.WriteString("# clients follow MOVED replies and sentinels to those same addresses.\n")
	} else {
		b.WriteString("# expect it. Each server is the host of its service name, on the compose network.\n")
	}
	b.WriteString("services:\n")
	mounts := func(rw bool) {
		mode := ":ro"
		if rw {
			mode = ""
		}
		fmt.Fprintf(&b, "    volumes:\n      - %s\n", yq(".:"+root+mode))
		if !o.NoAuth {
			fmt.Fprintf(&b, "      - %s\n", yq(o.Secrets+":"+o.Secrets+":ro"))
		}
	}
	net := func() {
		if o.Bind != "" {
			b.WriteString("    network_mode: host\n")
		}
	}
	var vols []string
	for _, s := range l.Servers {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n    entrypoint: [\"redis-server\"]\n", s.Name, yq(o.Image))
		args := []string{path.Join(root, s.Conf)}
		if s.Sentinel() {
			args = append(args, "--sentinel")
		}
		args = append(args, "--dir", "/data", "--logfile", "")
		fmt.Fprintf(&b, "    command: %s\n", yamlList(args))
		net()
		if s.Sentinel() {
			b.WriteString("    # read-write: a sentinel rewrites its config file\n")
		}
		mounts(s.Sentinel())
		fmt.Fprintf(&b, "      - %s\n", yq(s.Name+"-data:/data"))
		vols = append(vols, s.Name+"-data")
	}
	var deps []string
	var addrs []string
	for _, s := range l.serversOf("cache") {
		deps = append(deps, s.Name)
		addrs = append(addrs, s.Addr())
	}
	b.WriteString("  cache-create:\n    # once: creates the cache cluster (retried while the nodes start)\n")
	fmt.Fprintf(&b, "    image: %s\n", yq(o.Image))
	if o.Bind != "" && o.NoAuth {
		args := append([]string{"--cluster", "create"}, addrs...)
		args = append(args, "--cluster-replicas", strconv.Itoa(o.CacheReplicas), "--cluster-yes")
		fmt.Fprintf(&b, "    entrypoint: [\"redis-cli\"]\n    command: %s\n", yamlList(args))
	} else {
		fmt.Fprintf(&b, "    entrypoint: [\"sh\", %s]\n", yq(path.Join(root, "cache/create-cluster.sh")))
	}
	net()
	mounts(false)
	fmt.Fprintf(&b, "    depends_on: %s\n    restart: \"on-failure:10\"\n", yamlList(deps))
	b.WriteString("volumes:\n")
	for _, v := range vols {
		fmt.Fprintf(&b, "  %s: {}\n", v)
	}
	return File{Path: "compose.yaml", Mode: 0o644, Content: []byte(b.String())}
}

// readme is the operator's index of the layout.
func (l *Layout) readme() File {
	o := l.opts
	var b strings.Builder
	fmt.Fprintf(&b, "# Target layout (redisplit targets init)\n\nRedis %s; generated from the scan of %s. Reference: docs/targets.md.\n\n", o.RedisVersion, l.rep.Legacy.Addr)
	b.WriteString("| bucket | kind | maxmemory (each server) | sized from |\n|---|---|---|---|\n")
	for _, s := range l.Stores {
		mm := "-"
		if s.MaxMemory > 0 {
			mm = scan.HumanBytes(s.MaxMemory)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.Bucket, s.Kind, mm, s.Sizing)
	}
	b.WriteString("\n| server | role | address | start |\n|---|---|---|---|\n")
	for _, s := range l.Servers {
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` |\n", s.Name, s.Role, s.Addr(), s.StartCommand())
	}
	b.WriteString("\nThen:\n\n")
	var steps []string
	if !o.NoAuth {
		steps = append(steps, fmt.Sprintf("put the password files in %s (%s) and run `install-secrets.sh` on each server", o.Secrets, strings.Join(l.passwordFileNames(), ", ")))
	}
	steps = append(steps, "start every server (one data directory each; sentinels rewrite their config file, so start them from a copy you may change; the servers started under `umask 077` write passwords into their config when they rewrite it)",
		"`sh cache/create-cluster.sh` once")
	if o.Queue == "sqs" {
		steps = append(steps, "`sh queue/create-queues.sh` once")
	}
	steps = append(steps, "`redisplit targets check --config redisplit.yaml` until it passes (exit 0).")
	for i, st := range steps {
		fmt.Fprintf(&b, "%d. %s\n", i+1, st)
	}
	return File{Path: "README.md", Mode: 0o644, Content: []byte(b.String())}
}

func (l *Layout) passwordFileNames() []string {
	var out []string
	for _, p := range PasswordFiles(l.rep, l.opts) {
		out = append(out, path.Base(p))
	}
	return out
}

func (l *Layout) forecastFile() File {
	js, _ := json.MarshalIndent(l.Forecast, "", "  ")
	return File{Path: "cache/skew.json", Mode: 0o644, Content: append(js, '\n')}
}

// Target returns the config of bucket's target in the layout, as
// redisplit.yaml holds it.
func (l *Layout) Target(bucket string) config.Target {
	o := l.opts
	t := config.Target{}
	if !o.NoAuth {
		t.Username = "redisplit"
		t.PasswordFile = passwordFile(o, bucket, "redisplit")
	}
	switch st := l.store(bucket); st.Kind {
	case config.KindCluster:
		t.Kind = st.Kind
		for _, s := range l.serversOf(bucket) {
			t.Addrs = append(t.Addrs, s.Addr())
		}
	case config.KindSentinel:
		t.Kind, t.Master = st.Kind, o.MasterName
		for _, s := range l.serversOf(bucket, "sentinel") {
			t.Sentinels = append(t.Sentinels, s.Addr())
		}
	case config.KindSQS:
		return config.Target{Kind: config.KindSQS}
	default:
		t.Kind = st.Kind
		t.URL = "redis://" + l.serversOf(bucket)[0].Addr() + "/0"
	}
	return t
}

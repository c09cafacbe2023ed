// Command gen writes the Go encoders' value fixtures into the directory
// given as its argument (see ../generate.sh): gob (gorilla/sessions values
// and alexedwards/scs's codec), go-redis/cache's envelope (msgpack + 0x00
// and s2 + 0x01, through the library's own Marshal), msgpack
// (vmihailenco/msgpack), snappy and s2 framed streams (klauspost/compress).
package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-redis/cache/v9"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/vmihailenco/msgpack/v5"
)

func main() {
	dir := os.Args[1]
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(map[interface{}]interface{}{"user_id": 42, "role": "customer"}); err != nil {
		log.Fatal(err)
	}
	write("gob-gorilla-sessions.bin", g.Bytes())
	b, err := scs.GobCodec{}.Encode(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), map[string]interface{}{"userID": 42})
	if err != nil {
		log.Fatal(err)
	}
	write("gob-scs-session.bin", b)
	var plain bytes.Buffer
	if err := gob.NewEncoder(&plain).Encode(struct{ SKU, Name string }{"SKU-1", "lamp"}); err != nil {
		log.Fatal(err)
	}
	write("gob-struct.bin", plain.Bytes())

	c := cache.New(&cache.Options{})
	type profile struct {
		ID   int
		Name string
		Bio  string
	}
	small, err := c.Marshal(profile{42, "alice", ""})
	if err != nil {
		log.Fatal(err)
	}
	write("go-redis-cache-small.bin", small)
	big, err := c.Marshal(profile{42, "alice", strings.Repeat("likes lamps ", 20)})
	if err != nil {
		log.Fatal(err)
	}
	write("go-redis-cache-s2.bin", big)
	mp, err := msgpack.Marshal(map[string]any{"_permanent": true, "user_id": 42})
	if err != nil {
		log.Fatal(err)
	}
	write("msgpack-go-map.bin", mp)

	var sn, s2b bytes.Buffer
	sw := snappy.NewBufferedWriter(&sn)
	sw.Write([]byte(`{"id":42,"name":"lamp"}`))
	sw.Close()
	write("snappy-framed.bin", sn.Bytes())
	w2 := s2.NewWriter(&s2b)
	w2.Write([]byte(`{"id":42,"name":"lamp"}`))
	w2.Close()
	write("s2-framed.bin", s2b.Bytes())
	_ = context.Background
}

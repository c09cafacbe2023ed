package cmd

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/redisplit/redisplit/scan"
)

var updateGolden = flag.Bool("update-scan-golden", false, "rewrite cmd/testdata/scan-report.txt")

// TestScanReportSchema: the JSON fixture (a real report) decodes into
// scan.Report and encodes back to the same bytes, so every documented field
// still exists under its name (docs/scan-report.md, schema version 1).
func TestScanReportSchema(t *testing.T) {
	raw, err := os.ReadFile("testdata/scan-report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r scan.Report
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("fixture does not decode strictly: %v", err)
	}
	if r.SchemaVersion != 1 {
		t.Fatalf("schema_version %d", r.SchemaVersion)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatalf("report JSON changed shape; if intended, bump scan.SchemaVersion and update docs/scan-report.md\n%s", out.String())
	}
}

// TestScanTextGolden renders the fixture as text and compares it with the
// golden file (go test ./cmd -run TestScanTextGolden -update-scan-golden).
func TestScanTextGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/scan-report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r scan.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	renderScan(&out, &r)
	if *updateGolden {
		if err := os.WriteFile("testdata/scan-report.txt", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/scan-report.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("text report differs from testdata/scan-report.txt:\n%s", out.String())
	}
	for _, must := range []string{"!!! LEGACY IS ALREADY EVICTING", "±", "== sizing advice"} {
		if !bytes.Contains(want, []byte(must)) {
			t.Errorf("golden lacks %q", must)
		}
	}
}

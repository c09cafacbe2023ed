package main

import "testing"

func TestParseLiveStatus(t *testing.T) {
	for _, c := range []struct {
		name, doc   string
		syncing     bool
		backlog     int64
		lag         float64
		hasBacklog  bool
		wantBuckets int
	}{
		{"today's status: phases only", `{"buckets":[{"bucket":"cache","phase":"copying","total":{"keys":3}},{"bucket":"queue","phase":"syncing"}]}`,
			false, 0, 0, false, 2},
		{"live figures at the top", `{"buckets":[{"bucket":"cache","phase":"syncing","dirty_backlog":12,"lag_ms":4.5},{"bucket":"queue","phase":"syncing","dirty_backlog":30,"lag_ms":2}]}`,
			true, 30, 4.5, true, 2},
		{"live figures nested", `{"buckets":[{"bucket":"session","phase":"syncing","live":{"backlog":7,"lag_ms":9}}]}`,
			true, 7, 9, true, 1},
		{"live figures in a section of their own", `{"buckets":[{"bucket":"cache","phase":"syncing"}],"live":{"buckets":{"cache":{"lag_ms":3,"backlog":5}}}}`,
			true, 5, 3, true, 1},
		{"no buckets yet", `{"buckets":[]}`, false, 0, 0, false, 0},
	} {
		st, err := parseLiveStatus([]byte(c.doc))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if st.allSyncing() != c.syncing || st.backlog != c.backlog || st.lagMs != c.lag || st.hasBacklog != c.hasBacklog || len(st.phases) != c.wantBuckets {
			t.Errorf("%s: %+v (syncing %v)", c.name, st, st.allSyncing())
		}
	}
}

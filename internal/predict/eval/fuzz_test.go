package eval

import (
	"strings"
	"testing"
)

// FuzzParseCSV: any input is refused with an error or read into rows that
// keep the format's promises (times increasing, loss within 0–1).
func FuzzParseCSV(f *testing.F) {
	f.Add("t,ok,latency_ms\n0,1,50\n10,0,3000\n")
	f.Add("t,ok,latency_ms,loss,rtt_ms\n0,1,50,0.01,120\n10.5,1,55,,\n")
	f.Add("t,ok,latency_ms\n0,1,NaN\n")
	f.Add("t,ok\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := parseCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(rows) == 0 {
			t.Fatal("no error and no rows")
		}
		for i, r := range rows {
			if i > 0 && !(r.T > rows[i-1].T) {
				t.Fatalf("row %d: t %g not after %g", i, r.T, rows[i-1].T)
			}
			if r.LatencyMs < 0 || r.Loss < 0 || r.Loss > 1 || r.RTTMs < 0 {
				t.Fatalf("row %d out of range: %+v", i, r)
			}
		}
	})
}

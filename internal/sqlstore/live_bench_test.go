package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// BenchmarkLiveByProvider measures the read that drains and preemptive moves
// make every second or so: a batch of 1,000 of a provider's live streams,
// newest first, on an SQLite file holding 100,000 live streams and 100,000
// ended ones spread over 100 providers: "busy" reads one of them (1,000 live
// streams), "none" a provider with none (as at the end of a drain). Both walk
// the index of live streams (migration 0019).
func BenchmarkLiveByProvider(b *testing.B) {
	dsn, _ := tempDSN(b)
	s := mustOpen(b, dsn, newSealer(b))
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	var hs []switchboard.StreamHistory
	flush := func() {
		if err := s.ImportStreams(ctx, hs); err != nil {
			b.Fatal(err)
		}
		hs = hs[:0]
	}
	for i := range 200_000 {
		provider := fmt.Sprintf("p%d", i%100)
		st := switchboard.Stream{ID: fmt.Sprintf("st_%08d", i), Room: "r", UserID: "u", Role: switchboard.RolePublisher,
			Quality: switchboard.QualityHD, Provider: provider, Status: switchboard.StreamActive, Owner: "o",
			StartedAt: at.Add(time.Duration(i) * time.Millisecond)}
		st.LastHeartbeat = st.StartedAt
		seg := switchboard.StreamSegment{Provider: provider, Quality: st.Quality, StartedAt: st.StartedAt}
		if i < 100_000 {
			end := st.StartedAt.Add(time.Second)
			st.Status, st.EndedAt, seg.EndedAt, seg.EndReason = switchboard.StreamEnded, &end, &end, switchboard.EndClient
		}
		hs = append(hs, switchboard.StreamHistory{Stream: st, Segments: []switchboard.StreamSegment{seg},
			Trail: []switchboard.TrailEntry{{At: st.StartedAt, Kind: switchboard.TrailAssign, Provider: provider}}})
		if len(hs) == 5000 {
			flush()
		}
	}
	flush()
	for _, c := range []struct{ name, provider string }{{"busy", "p7"}, {"none", "gone"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ListStreams(ctx, switchboard.StreamFilter{Status: switchboard.StreamActive, Provider: c.provider, Limit: 1000}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

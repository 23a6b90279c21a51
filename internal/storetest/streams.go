package storetest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// s0 is the time the stream tests work around: the last day of a month, so
// that periods can cross a month boundary.
var s0 = time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)

func newStream(id, provider, owner string, at time.Time) switchboard.Stream {
	return switchboard.Stream{
		ID: id, Room: "room-" + id, UserID: "user-" + id, Role: switchboard.RolePublisher, Region: "eu-west",
		Quality: switchboard.QualityHD, Provider: provider, Status: switchboard.StreamActive, Owner: owner,
		StartedAt: at, LastHeartbeat: at,
	}
}

func assignEntry(st switchboard.Stream) switchboard.TrailEntry {
	return switchboard.TrailEntry{StreamID: st.ID, At: st.StartedAt, Kind: switchboard.TrailAssign, Provider: st.Provider,
		Reason: "highest priority healthy provider"}
}

func mustStart(t *testing.T, s switchboard.Store, st switchboard.Stream, maxActive int) switchboard.Stream {
	t.Helper()
	got, created, err := s.StartStream(context.Background(), st, assignEntry(st), maxActive)
	if err != nil {
		t.Fatalf("StartStream(%s): %v", st.ID, err)
	}
	if !created {
		t.Fatalf("StartStream(%s): created = false", st.ID)
	}
	return got
}

// startMany starts n streams on provider at s0, st_00, st_01 and so on.
func startMany(t *testing.T, s switchboard.Store, n int, provider string) {
	t.Helper()
	for i := range n {
		mustStart(t, s, newStream(fmt.Sprintf("st_%02d", i), provider, "o", s0), 0)
	}
}

func mustStream(t *testing.T, s switchboard.Store, id string) switchboard.Stream {
	t.Helper()
	st, err := s.GetStream(context.Background(), id)
	if err != nil {
		t.Fatalf("GetStream(%s): %v", id, err)
	}
	return st
}

func mustHeartbeat(t *testing.T, s switchboard.Store, id string, at time.Time) switchboard.Stream {
	t.Helper()
	st, err := s.Heartbeat(context.Background(), id, at)
	if err != nil {
		t.Fatalf("Heartbeat(%s): %v", id, err)
	}
	return st
}

func mustTrail(t *testing.T, s switchboard.Store, id string) []switchboard.TrailEntry {
	t.Helper()
	es, err := s.StreamTrail(context.Background(), id)
	if err != nil {
		t.Fatalf("StreamTrail(%s): %v", id, err)
	}
	return es
}

func mustMigrate(t *testing.T, s switchboard.Store, id, to string, at time.Time) switchboard.Stream {
	t.Helper()
	st, err := s.MigrateStream(context.Background(), id, switchboard.TrailEntry{At: at, Kind: switchboard.TrailMigrate,
		Provider: to, Reason: "failover"}, 0)
	if err != nil {
		t.Fatalf("MigrateStream(%s to %s): %v", id, to, err)
	}
	return st
}

func mustEnd(t *testing.T, s switchboard.Store, id string, at time.Time) switchboard.Stream {
	t.Helper()
	st, _, err := s.EndStream(context.Background(), id, at, switchboard.EndClient)
	if err != nil {
		t.Fatalf("EndStream(%s): %v", id, err)
	}
	return st
}

func mustActiveCounts(t *testing.T, s switchboard.Store) map[string]int64 {
	t.Helper()
	m, err := s.ActiveCounts(context.Background())
	if err != nil {
		t.Fatalf("ActiveCounts: %v", err)
	}
	// Providers with no active stream may be missing: drop zeros to compare.
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}

func mustList(t *testing.T, s switchboard.Store, f switchboard.StreamFilter) []switchboard.Stream {
	t.Helper()
	sts, err := s.ListStreams(context.Background(), f)
	if err != nil {
		t.Fatalf("ListStreams(%+v): %v", f, err)
	}
	return sts
}

func mustUsage(t *testing.T, s switchboard.Store, from, to time.Time) map[string]switchboard.ProviderUsage {
	t.Helper()
	us, err := s.Usage(context.Background(), from, to)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	m := map[string]switchboard.ProviderUsage{}
	for _, u := range us {
		if _, dup := m[u.Provider]; dup {
			t.Fatalf("Usage lists %s twice", u.Provider)
		}
		m[u.Provider] = u
	}
	return m
}

func streamIDs(sts []switchboard.Stream) []string {
	ids := make([]string, len(sts))
	for i, st := range sts {
		ids[i] = st.ID
	}
	return ids
}

func trailKinds(es []switchboard.TrailEntry) []string {
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.Kind
	}
	return ks
}

// equalStream compares streams, their times with Equal, and checks that the
// times of got are in UTC.
func equalStream(t *testing.T, got, want switchboard.Stream) {
	t.Helper()
	times := []time.Time{got.StartedAt, got.LastHeartbeat}
	if got.EndedAt != nil {
		times = append(times, *got.EndedAt)
	}
	for _, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("stream %s has time %v, want UTC", got.ID, tm)
		}
	}
	eqTime := func(name string, a, b time.Time) {
		if !a.Equal(b) {
			t.Errorf("stream %s: %s = %v, want %v", got.ID, name, a, b)
		}
	}
	eqTime("StartedAt", got.StartedAt, want.StartedAt)
	eqTime("LastHeartbeat", got.LastHeartbeat, want.LastHeartbeat)
	switch {
	case (got.EndedAt == nil) != (want.EndedAt == nil):
		t.Errorf("stream %s: EndedAt = %v, want %v", got.ID, got.EndedAt, want.EndedAt)
	case got.EndedAt != nil:
		eqTime("EndedAt", *got.EndedAt, *want.EndedAt)
	}
	got.StartedAt, got.LastHeartbeat, got.EndedAt = time.Time{}, time.Time{}, nil
	want.StartedAt, want.LastHeartbeat, want.EndedAt = time.Time{}, time.Time{}, nil
	if got != want {
		t.Errorf("stream differs:\n got %+v\nwant %+v", got, want)
	}
}

func ended(st switchboard.Stream, at time.Time, reason string) switchboard.Stream {
	st.Status, st.EndedAt, st.EndReason = switchboard.StreamEnded, &at, reason
	return st
}

func testStartGetStream(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	at := time.Date(2025, 1, 31, 11, 0, 0, 123456789, time.FixedZone("CET", 3600)) // 10:00:00.123456789 UTC
	st := newStream("st_1", "agora", "token:t1", at)
	st.IdempotencyKey = "key-1"
	first := assignEntry(st)
	first.Statuses = map[string]switchboard.Status{"agora": switchboard.StatusHealthy, "zego": switchboard.StatusCritical}
	first.LeastBad = true
	got, created, err := s.StartStream(ctx, st, first, 10)
	if err != nil || !created {
		t.Fatalf("StartStream = %v, created %v", err, created)
	}
	equalStream(t, got, st)
	equalStream(t, mustStream(t, s, "st_1"), st)

	es := mustTrail(t, s, "st_1")
	if len(es) != 1 {
		t.Fatalf("trail = %+v, want one entry", es)
	}
	e := es[0]
	if e.ID == 0 || e.StreamID != "st_1" || !e.At.Equal(at) || e.At.Location() != time.UTC || e.Kind != switchboard.TrailAssign ||
		e.Provider != "agora" || e.Reason != first.Reason || !e.LeastBad || !reflect.DeepEqual(e.Statuses, first.Statuses) {
		t.Errorf("trail entry = %+v, want %+v", e, first)
	}
	if got := mustActiveCounts(t, s); !reflect.DeepEqual(got, map[string]int64{"agora": 1}) {
		t.Errorf("ActiveCounts = %v", got)
	}

	// The store starts every stream active, whatever the caller filled in.
	odd := newStream("st_2", "agora", "token:t1", s0)
	odd.Status, odd.EndReason, odd.Migrations = switchboard.StreamEnded, "ended", 3
	end := s0.Add(time.Hour)
	odd.EndedAt = &end
	got = mustStart(t, s, odd, 0)
	want := newStream("st_2", "agora", "token:t1", s0)
	equalStream(t, got, want)
	equalStream(t, mustStream(t, s, "st_2"), want)
}

func testStartStreamInvalid(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	orig := mustStart(t, s, newStream("dup", "agora", "token:a", s0), 0)
	tests := []struct {
		name   string
		mutate func(*switchboard.Stream)
		code   string
	}{
		{"no id", func(st *switchboard.Stream) { st.ID = "" }, switchboard.EInvalid},
		{"no provider", func(st *switchboard.Stream) { st.Provider = "" }, switchboard.EInvalid},
		{"bad quality", func(st *switchboard.Stream) { st.Quality = "4k" }, switchboard.EInvalid},
		{"duplicate id", func(st *switchboard.Stream) { st.ID, st.Room = "dup", "other" }, switchboard.EConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStream("new", "zego", "token:b", s0.Add(time.Minute))
			tt.mutate(&st)
			_, created, err := s.StartStream(ctx, st, assignEntry(st), 0)
			wantCode(t, err, tt.code)
			if created {
				t.Error("created = true on error")
			}
		})
	}
	if sts := mustList(t, s, switchboard.StreamFilter{}); len(sts) != 1 {
		t.Errorf("%d streams after failed starts, want 1", len(sts))
	}
	equalStream(t, mustStream(t, s, "dup"), orig)
	if es := mustTrail(t, s, "dup"); len(es) != 1 {
		t.Errorf("%d trail entries, want 1", len(es))
	}
	if got := mustActiveCounts(t, s); !reflect.DeepEqual(got, map[string]int64{"agora": 1}) {
		t.Errorf("ActiveCounts = %v", got)
	}
}

func testStartStreamIdempotent(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	st := newStream("st_a", "agora", "token:a", s0)
	st.IdempotencyKey = "retry-me"
	orig := mustStart(t, s, st, 1)

	tests := []struct {
		name        string
		id, owner   string
		key         string
		provider    string
		maxActive   int
		wantCreated bool
		wantID      string
	}{
		// A retry: even at capacity (agora has 1 of 1) it answers the first stream.
		{"same owner and key", "st_b", "token:a", "retry-me", "agora", 1, false, "st_a"},
		{"same key, another provider", "st_c", "token:a", "retry-me", "zego", 0, false, "st_a"},
		{"another owner", "st_d", "token:b", "retry-me", "zego", 0, true, "st_d"},
		{"another key", "st_e", "token:a", "other", "zego", 0, true, "st_e"},
		{"no key", "st_f", "token:a", "", "zego", 0, true, "st_f"},
		{"no key again", "st_g", "token:a", "", "zego", 0, true, "st_g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newStream(tt.id, tt.provider, tt.owner, s0.Add(time.Minute))
			n.IdempotencyKey = tt.key
			got, created, err := s.StartStream(ctx, n, assignEntry(n), tt.maxActive)
			if err != nil {
				t.Fatalf("StartStream: %v", err)
			}
			if created != tt.wantCreated || got.ID != tt.wantID {
				t.Errorf("StartStream = %s, created %v; want %s, created %v", got.ID, created, tt.wantID, tt.wantCreated)
			}
			if !created {
				equalStream(t, got, orig)
			}
		})
	}
	if es := mustTrail(t, s, "st_a"); len(es) != 1 {
		t.Errorf("retries added trail entries: %+v", es)
	}
	for _, id := range []string{"st_b", "st_c"} {
		_, err := s.GetStream(ctx, id)
		wantCode(t, err, switchboard.ENotFound)
	}
	if n := len(mustList(t, s, switchboard.StreamFilter{})); n != 5 {
		t.Errorf("%d streams, want 5", n)
	}
	// The key finds its stream in a listing, for its owner only.
	if got := mustList(t, s, switchboard.StreamFilter{Owner: "token:a", IdempotencyKey: "retry-me"}); len(got) != 1 || got[0].ID != "st_a" {
		t.Errorf("list by key = %+v, want st_a", got)
	}
	if got := mustList(t, s, switchboard.StreamFilter{Owner: "token:c", IdempotencyKey: "retry-me"}); len(got) != 0 {
		t.Errorf("list by key of another owner = %+v, want none", got)
	}
	// An ended stream still answers its key: a late retry must not start a second one.
	mustEnd(t, s, "st_a", s0.Add(2*time.Minute))
	got, created, err := s.StartStream(ctx, st, assignEntry(st), 0)
	if err != nil || created || got.ID != "st_a" || got.Status != switchboard.StreamEnded {
		t.Errorf("retry after end = %s %s, created %v, %v; want the ended st_a", got.ID, got.Status, created, err)
	}
}

func testStartStreamCapacity(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustStart(t, s, newStream("a1", "agora", "o", s0), 2)
	mustStart(t, s, newStream("a2", "agora", "o", s0), 2)
	mustStart(t, s, newStream("z1", "zego", "o", s0), 1) // other providers do not count

	full := newStream("a3", "agora", "o", s0)
	_, created, err := s.StartStream(ctx, full, assignEntry(full), 2)
	wantCode(t, err, switchboard.EUnavailable)
	if created {
		t.Error("created = true at capacity")
	}
	if !strings.Contains(err.Error(), "agora is at capacity (2 active streams)") {
		t.Errorf("error = %v, want it to say agora is at capacity", err)
	}
	_, err = s.GetStream(ctx, "a3")
	wantCode(t, err, switchboard.ENotFound)

	// A lower limit than the active count also refuses; no limit accepts.
	_, _, err = s.StartStream(ctx, full, assignEntry(full), 1)
	wantCode(t, err, switchboard.EUnavailable)
	mustStart(t, s, newStream("a4", "agora", "o", s0), 0)

	// Ending a stream frees its place.
	mustEnd(t, s, "a1", s0.Add(time.Minute))
	_, _, err = s.StartStream(ctx, full, assignEntry(full), 2)
	wantCode(t, err, switchboard.EUnavailable) // a2 and a4 are active
	mustEnd(t, s, "a4", s0.Add(time.Minute))
	mustStart(t, s, full, 2)
	if got, want := mustActiveCounts(t, s), map[string]int64{"agora": 2, "zego": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
}

func testStreamsNotFound(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustStart(t, s, newStream("exists", "agora", "o", s0), 0)
	tests := []struct {
		name string
		call func() error
	}{
		{"GetStream", func() error { _, err := s.GetStream(ctx, "missing"); return err }},
		{"StreamTrail", func() error { _, err := s.StreamTrail(ctx, "missing"); return err }},
		{"Heartbeat", func() error { _, err := s.Heartbeat(ctx, "missing", s0); return err }},
		{"AppendTrail", func() error {
			return s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: "missing", At: s0, Kind: switchboard.TrailFailure, Provider: "agora"})
		}},
		{"MigrateStream", func() error {
			_, err := s.MigrateStream(ctx, "missing", switchboard.TrailEntry{At: s0, Kind: switchboard.TrailMigrate, Provider: "zego"}, 0)
			return err
		}},
		{"EndStream", func() error { _, _, err := s.EndStream(ctx, "missing", s0, switchboard.EndClient); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, switchboard.ENotFound)
			if !strings.Contains(err.Error(), "missing") {
				t.Errorf("error = %v, want it to name the stream", err)
			}
		})
	}
}

func testHeartbeat(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	st := mustStart(t, s, newStream("hb", "agora", "o", s0), 0)
	other := mustStart(t, s, newStream("other", "agora", "o", s0), 0)
	for _, tt := range []struct {
		at   time.Time
		want time.Time
	}{
		{s0.Add(30 * time.Second), s0.Add(30 * time.Second)},
		{s0.Add(90 * time.Second).In(time.FixedZone("X", -5*3600)), s0.Add(90 * time.Second)},
		{s0.Add(60 * time.Second), s0.Add(90 * time.Second)}, // late, out of order: never moves back
	} {
		got, err := s.Heartbeat(ctx, "hb", tt.at)
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		st.LastHeartbeat = tt.want
		equalStream(t, got, st) // the answer is the stream after the heartbeat
		equalStream(t, mustStream(t, s, "hb"), st)
	}
	equalStream(t, mustStream(t, s, "other"), other)
	if es := mustTrail(t, s, "hb"); len(es) != 1 {
		t.Errorf("heartbeats added trail entries: %v", trailKinds(es))
	}
	mustEnd(t, s, "hb", s0.Add(2*time.Minute))
	_, err := s.Heartbeat(ctx, "hb", s0.Add(3*time.Minute))
	wantCode(t, err, switchboard.EConflict)
	if got := mustStream(t, s, "hb").LastHeartbeat; !got.Equal(s0.Add(90 * time.Second)) {
		t.Errorf("LastHeartbeat = %v after a refused heartbeat", got)
	}
}

func testAppendTrail(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustStart(t, s, newStream("tr", "agora", "o", s0), 0)
	failure := switchboard.TrailEntry{StreamID: "tr", At: s0.Add(time.Minute), Kind: switchboard.TrailFailure, Provider: "agora",
		Reason: "join timed out", Stage: switchboard.StageTimeout, Code: "E_TIMEOUT"}
	if err := s.AppendTrail(ctx, failure); err != nil {
		t.Fatalf("AppendTrail: %v", err)
	}
	second := failure
	second.At, second.Stage, second.Code, second.Reason = s0.Add(2*time.Minute), "media", "", ""
	if err := s.AppendTrail(ctx, second); err != nil {
		t.Fatalf("AppendTrail: %v", err)
	}
	es := mustTrail(t, s, "tr")
	if got := trailKinds(es); !slices.Equal(got, []string{"assign", "failure", "failure"}) {
		t.Fatalf("trail kinds = %v", got)
	}
	for i, want := range []switchboard.TrailEntry{failure, second} {
		got := es[i+1]
		if got.ID <= es[i].ID {
			t.Errorf("trail ids not increasing: %d then %d", es[i].ID, got.ID)
		}
		want.ID = got.ID
		if !got.At.Equal(want.At) {
			t.Errorf("At = %v, want %v", got.At, want.At)
		}
		got.At, want.At = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("trail entry = %+v, want %+v", got, want)
		}
	}
	mustEnd(t, s, "tr", s0.Add(3*time.Minute))
	wantCode(t, s.AppendTrail(ctx, failure), switchboard.EConflict)
	if n := len(mustTrail(t, s, "tr")); n != 4 {
		t.Errorf("%d trail entries, want 4 (assign, 2 failures, end)", n)
	}
}

func testMigrateStream(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	st := mustStart(t, s, newStream("mv", "agora", "o", s0), 0)
	mustHeartbeat(t, s, "mv", s0.Add(time.Minute))
	e := switchboard.TrailEntry{At: s0.Add(5 * time.Minute), Kind: switchboard.TrailMigrate, Provider: "zego",
		From: "agora", Reason: "client reported failures", Statuses: map[string]switchboard.Status{"zego": switchboard.StatusExcellent}}
	got, err := s.MigrateStream(ctx, "mv", e, 5)
	if err != nil {
		t.Fatalf("MigrateStream: %v", err)
	}
	want := st
	want.Provider, want.Migrations, want.LastHeartbeat = "zego", 1, s0.Add(5*time.Minute)
	equalStream(t, got, want)
	equalStream(t, mustStream(t, s, "mv"), want)
	es := mustTrail(t, s, "mv")
	if got := trailKinds(es); !slices.Equal(got, []string{"assign", "migrate"}) {
		t.Fatalf("trail kinds = %v", got)
	}
	if m := es[1]; m.StreamID != "mv" || m.Provider != "zego" || m.From != "agora" || m.Reason != e.Reason ||
		!m.At.Equal(e.At) || !reflect.DeepEqual(m.Statuses, e.Statuses) {
		t.Errorf("migrate entry = %+v", m)
	}
	if got, want := mustActiveCounts(t, s), map[string]int64{"zego": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}

	// To the provider it is on: refused.
	_, err = s.MigrateStream(ctx, "mv", switchboard.TrailEntry{At: s0.Add(6 * time.Minute), Kind: switchboard.TrailMigrate, Provider: "zego"}, 0)
	wantCode(t, err, switchboard.EInvalid)
	// To a full provider: refused, nothing changes.
	mustStart(t, s, newStream("full", "livekit", "o", s0), 0)
	_, err = s.MigrateStream(ctx, "mv", switchboard.TrailEntry{At: s0.Add(6 * time.Minute), Kind: switchboard.TrailMigrate, Provider: "livekit"}, 1)
	wantCode(t, err, switchboard.EUnavailable)
	equalStream(t, mustStream(t, s, "mv"), want)
	if n := len(mustTrail(t, s, "mv")); n != 2 {
		t.Errorf("%d trail entries after refused migrations, want 2", n)
	}

	// And back: a second migration.
	got = mustMigrate(t, s, "mv", "agora", s0.Add(10*time.Minute))
	want.Provider, want.Migrations, want.LastHeartbeat = "agora", 2, s0.Add(10*time.Minute)
	equalStream(t, got, want)

	// Ended: refused.
	mustEnd(t, s, "mv", s0.Add(11*time.Minute))
	_, err = s.MigrateStream(ctx, "mv", switchboard.TrailEntry{At: s0.Add(12 * time.Minute), Kind: switchboard.TrailMigrate, Provider: "zego"}, 0)
	wantCode(t, err, switchboard.EConflict)
	if got := trailKinds(mustTrail(t, s, "mv")); !slices.Equal(got, []string{"assign", "migrate", "migrate", "end"}) {
		t.Errorf("trail kinds = %v", got)
	}
}

func testEndStream(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	st := mustStart(t, s, newStream("end", "agora", "o", s0), 0)
	at := s0.Add(30 * time.Minute).In(time.FixedZone("X", 7200))
	got, endedNow, err := s.EndStream(ctx, "end", at, switchboard.EndClient)
	if err != nil || !endedNow {
		t.Fatalf("EndStream = %v, %v; want ended by this call", endedNow, err)
	}
	want := ended(st, at, switchboard.EndClient)
	equalStream(t, got, want)
	equalStream(t, mustStream(t, s, "end"), want)
	es := mustTrail(t, s, "end")
	if got := trailKinds(es); !slices.Equal(got, []string{"assign", "end"}) {
		t.Fatalf("trail kinds = %v", got)
	}
	if e := es[1]; e.Provider != "agora" || e.Reason != switchboard.EndClient || !e.At.Equal(at) {
		t.Errorf("end entry = %+v", e)
	}
	if got := mustActiveCounts(t, s); len(got) != 0 {
		t.Errorf("ActiveCounts = %v, want none", got)
	}

	// Idempotent: a second end changes nothing.
	again, endedNow, err := s.EndStream(ctx, "end", s0.Add(time.Hour), switchboard.EndAbandoned)
	if err != nil || endedNow {
		t.Fatalf("second EndStream = %v, %v; want not ended by this call", endedNow, err)
	}
	equalStream(t, again, want)
	equalStream(t, mustStream(t, s, "end"), want)
	if n := len(mustTrail(t, s, "end")); n != 2 {
		t.Errorf("%d trail entries after a second end, want 2", n)
	}

	// An end before the start (a skewed clock) ends at the start.
	st2 := mustStart(t, s, newStream("early", "agora", "o", s0), 0)
	got, _, err = s.EndStream(ctx, "early", s0.Add(-time.Minute), switchboard.EndClient)
	if err != nil {
		t.Fatal(err)
	}
	equalStream(t, got, ended(st2, s0, switchboard.EndClient))

	u := mustUsage(t, s, s0.Add(-time.Hour), s0.Add(time.Hour))["agora"]
	if !approx(u.Seconds[switchboard.QualityHD], 1800) || u.ActiveStreams != 0 || u.TotalStreams != 2 {
		t.Errorf("usage = %+v, want 1800 s of hd, 2 streams, none active", u)
	}
}

func testAbandonStale(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	old := mustStart(t, s, newStream("old", "agora", "o", s0), 0)
	mustHeartbeat(t, s, "old", s0.Add(time.Minute))
	fresh := mustStart(t, s, newStream("fresh", "agora", "o", s0), 0)
	mustHeartbeat(t, s, "fresh", s0.Add(10*time.Minute))
	mustStart(t, s, newStream("moved", "agora", "o", s0), 0)
	moved := mustMigrate(t, s, "moved", "zego", s0.Add(2*time.Minute))
	mustStart(t, s, newStream("done", "agora", "o", s0), 0)
	done := mustEnd(t, s, "done", s0.Add(30*time.Second))

	got, err := s.AbandonStale(ctx, s0.Add(5*time.Minute))
	if err != nil {
		t.Fatalf("AbandonStale: %v", err)
	}
	old.LastHeartbeat = s0.Add(time.Minute)
	want := []switchboard.Stream{ended(old, s0.Add(time.Minute), switchboard.EndAbandoned), ended(moved, s0.Add(2*time.Minute), switchboard.EndAbandoned)}
	if len(got) != len(want) {
		t.Fatalf("AbandonStale ended %v, want old and moved", streamIDs(got))
	}
	for i := range want {
		equalStream(t, got[i], want[i])
		equalStream(t, mustStream(t, s, want[i].ID), want[i])
	}
	fresh.LastHeartbeat = s0.Add(10 * time.Minute)
	equalStream(t, mustStream(t, s, "fresh"), fresh)
	equalStream(t, mustStream(t, s, "done"), done)
	if ks := trailKinds(mustTrail(t, s, "moved")); !slices.Equal(ks, []string{"assign", "migrate", "end"}) {
		t.Errorf("trail kinds = %v", ks)
	}

	// The abandoned streams count up to their last heartbeat: old 60 s, moved
	// 120 s (then none on zego), done 30 s, and fresh, still open, up to its
	// last heartbeat at 10 min.
	us := mustUsage(t, s, s0, s0.Add(time.Hour))
	if got := us["agora"].Seconds[switchboard.QualityHD]; !approx(got, 60+120+30+600) {
		t.Errorf("agora hd seconds = %v, want %v", got, 60+120+30+600)
	}
	if got := us["zego"].Seconds[switchboard.QualityHD]; got != 0 {
		t.Errorf("zego hd seconds = %v, want 0: moved was abandoned as it arrived", got)
	}

	again, err := s.AbandonStale(ctx, s0.Add(5*time.Minute))
	if err != nil || len(again) != 0 {
		t.Errorf("second AbandonStale = %v, %v; want none", streamIDs(again), err)
	}
	if got, want := mustActiveCounts(t, s), map[string]int64{"agora": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
}

func testListStreams(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	// Ten streams: pairs share a start time, so the id breaks ties.
	var all []switchboard.Stream
	for i := range 10 {
		provider := []string{"agora", "zego"}[i%2]
		owner := []string{"token:a", "token:b", "user:c"}[i%3]
		st := mustStart(t, s, newStream(fmt.Sprintf("st_%02d", i), provider, owner, s0.Add(time.Duration(i/2)*time.Minute)), 0)
		if i%4 == 0 {
			st = mustEnd(t, s, st.ID, s0.Add(time.Hour))
		}
		all = append(all, st)
	}
	newestFirst := slices.Clone(all)
	slices.Reverse(newestFirst) // start times increase with the id
	filter := func(keep func(switchboard.Stream) bool) []string {
		var ids []string
		for _, st := range newestFirst {
			if keep(st) {
				ids = append(ids, st.ID)
			}
		}
		return ids
	}
	at := func(i int) *switchboard.StreamCursor {
		return &switchboard.StreamCursor{StartedAt: all[i].StartedAt, ID: all[i].ID}
	}
	tests := []struct {
		name string
		f    switchboard.StreamFilter
		want []string
	}{
		{"all", switchboard.StreamFilter{}, filter(func(switchboard.Stream) bool { return true })},
		{"active", switchboard.StreamFilter{Status: switchboard.StreamActive},
			filter(func(st switchboard.Stream) bool { return st.Status == switchboard.StreamActive })},
		{"ended", switchboard.StreamFilter{Status: switchboard.StreamEnded}, []string{"st_08", "st_04", "st_00"}},
		{"provider", switchboard.StreamFilter{Provider: "zego"}, []string{"st_09", "st_07", "st_05", "st_03", "st_01"}},
		{"owner", switchboard.StreamFilter{Owner: "token:a"}, []string{"st_09", "st_06", "st_03", "st_00"}},
		{"combined", switchboard.StreamFilter{Status: switchboard.StreamActive, Provider: "agora", Owner: "user:c"}, []string{"st_02"}},
		{"none", switchboard.StreamFilter{Provider: "nobody"}, nil},
		{"limit", switchboard.StreamFilter{Limit: 3}, []string{"st_09", "st_08", "st_07"}},
		// st_05 and st_04 start at the same time: the cursor at st_05 keeps st_04.
		{"before tie", switchboard.StreamFilter{Before: at(5), Limit: 2}, []string{"st_04", "st_03"}},
		{"before tie, filtered", switchboard.StreamFilter{Before: at(5), Provider: "zego"}, []string{"st_03", "st_01"}},
		{"before oldest", switchboard.StreamFilter{Before: at(0)}, nil},
		{"before a time only", switchboard.StreamFilter{Before: &switchboard.StreamCursor{StartedAt: s0.Add(2 * time.Minute)}},
			[]string{"st_03", "st_02", "st_01", "st_00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := streamIDs(mustList(t, s, tt.f))
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListStreams(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	// Paging with the cursor of the last stream of each page visits each once.
	var paged []string
	var cursor *switchboard.StreamCursor
	for range 10 {
		page := mustList(t, s, switchboard.StreamFilter{Before: cursor, Limit: 3})
		if len(page) == 0 {
			break
		}
		paged = append(paged, streamIDs(page)...)
		last := page[len(page)-1]
		cursor = &switchboard.StreamCursor{StartedAt: last.StartedAt, ID: last.ID}
	}
	if want := streamIDs(newestFirst); !slices.Equal(paged, want) {
		t.Errorf("paged = %v, want %v", paged, want)
	}
	for i, st := range mustList(t, s, switchboard.StreamFilter{}) {
		equalStream(t, st, newestFirst[i])
	}

	_, err := s.ListStreams(ctx, switchboard.StreamFilter{Status: "paused"})
	wantCode(t, err, switchboard.EInvalid)
}

func testListStreamsLimits(t *testing.T, s switchboard.Store) {
	const n = 510
	for i := range n {
		mustStart(t, s, newStream(fmt.Sprintf("st_%04d", i), "agora", "o", s0.Add(time.Duration(i)*time.Second)), 0)
	}
	for _, tt := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {501, 500}, {100000, 500}} {
		sts := mustList(t, s, switchboard.StreamFilter{Limit: tt.limit})
		if len(sts) != tt.want {
			t.Errorf("ListStreams(Limit %d) returned %d, want %d", tt.limit, len(sts), tt.want)
		}
		if len(sts) > 0 && sts[0].ID != fmt.Sprintf("st_%04d", n-1) {
			t.Errorf("ListStreams(Limit %d) starts with %s, want the newest", tt.limit, sts[0].ID)
		}
	}
}

func approx(got, want float64) bool { return math.Abs(got-want) < 1e-6 }

// seconds is the expected usage of a provider in a period.
type seconds struct {
	provider      string
	perQuality    map[switchboard.Quality]float64
	in, out       int64
	active, total int64
}

func checkUsage(t *testing.T, got map[string]switchboard.ProviderUsage, want []seconds) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("usage lists %d providers, want %d: %v", len(got), len(want), got)
	}
	for _, w := range want {
		u, ok := got[w.provider]
		if !ok {
			t.Errorf("usage of %s missing", w.provider)
			continue
		}
		if u.Seconds == nil {
			t.Errorf("usage of %s: nil Seconds", w.provider)
		}
		for _, q := range switchboard.Qualities {
			if !approx(u.Seconds[q], w.perQuality[q]) {
				t.Errorf("usage of %s: %s seconds = %v, want %v", w.provider, q, u.Seconds[q], w.perQuality[q])
			}
		}
		for q := range u.Seconds {
			if !q.Valid() {
				t.Errorf("usage of %s: unknown quality %q", w.provider, q)
			}
		}
		if u.FailoversIn != w.in || u.FailoversOut != w.out || u.ActiveStreams != w.active || u.TotalStreams != w.total {
			t.Errorf("usage of %s: in %d out %d active %d total %d; want in %d out %d active %d total %d", w.provider,
				u.FailoversIn, u.FailoversOut, u.ActiveStreams, u.TotalStreams, w.in, w.out, w.active, w.total)
		}
	}
}

func testUsage(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	day := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	hm := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	start := func(id, provider string, q switchboard.Quality, at time.Time) {
		st := newStream(id, provider, "o", at)
		st.Quality = q
		mustStart(t, s, st, 0)
	}
	const hd, sd, audio, fullhd = switchboard.QualityHD, switchboard.QualitySD, switchboard.QualityAudio, switchboard.QualityFullHD

	// A: 10:00 to 10:30 on p, hd.
	start("a", "p", hd, hm(10, 0))
	mustEnd(t, s, "a", hm(10, 30))
	// B: across the month boundary, 23:30 to 00:45 on q, sd.
	start("b", "q", sd, hm(23, 30))
	mustEnd(t, s, "b", hm(24, 45))
	// C: open on r, audio, from 12:00; last heartbeat at 12:05:30.5.
	start("c", "r", audio, hm(12, 0))
	mustHeartbeat(t, s, "c", hm(12, 5).Add(30500*time.Millisecond))
	// D: fullhd, on p from 14:00, to q at 14:20, ended at 14:50.
	start("d", "p", fullhd, hm(14, 0))
	mustMigrate(t, s, "d", "q", hm(14, 20))
	mustEnd(t, s, "d", hm(14, 50))

	feb := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	type q = map[switchboard.Quality]float64
	tests := []struct {
		name     string
		from, to time.Time
		want     []seconds
	}{
		{"the day", day, feb, []seconds{
			{provider: "p", perQuality: q{hd: 1800, fullhd: 1200}, out: 1, total: 2},
			{provider: "q", perQuality: q{sd: 1800, fullhd: 1800}, in: 1, total: 2},
			{provider: "r", perQuality: q{audio: 330.5}, active: 1, total: 1},
		}},
		{"January", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), feb, []seconds{
			{provider: "p", perQuality: q{hd: 1800, fullhd: 1200}, out: 1, total: 2},
			{provider: "q", perQuality: q{sd: 1800, fullhd: 1800}, in: 1, total: 2},
			{provider: "r", perQuality: q{audio: 330.5}, active: 1, total: 1},
		}},
		{"February", feb, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), []seconds{
			{provider: "p", total: 2},
			{provider: "q", perQuality: q{sd: 2700}, total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"inside A", hm(10, 10), hm(10, 20), []seconds{
			{provider: "p", perQuality: q{hd: 600}, total: 2},
			{provider: "q", total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"the end of A is excluded", hm(10, 30), hm(11, 0), []seconds{
			{provider: "p", total: 2},
			{provider: "q", total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"tail of the open C", hm(12, 5), hm(13, 0), []seconds{
			{provider: "p", total: 2},
			{provider: "q", total: 2},
			{provider: "r", perQuality: q{audio: 30.5}, active: 1, total: 1},
		}},
		{"after C's last heartbeat", hm(12, 6), hm(13, 0), []seconds{
			{provider: "p", total: 2},
			{provider: "q", total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"around D's migration", hm(14, 10), hm(14, 30), []seconds{
			{provider: "p", perQuality: q{fullhd: 600}, out: 1, total: 2},
			{provider: "q", perQuality: q{fullhd: 600}, in: 1, total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"D after the migration", hm(14, 20), hm(15, 0), []seconds{
			{provider: "p", out: 1, total: 2},
			{provider: "q", perQuality: q{fullhd: 1800}, in: 1, total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"D before the migration", hm(14, 0), hm(14, 20), []seconds{
			{provider: "p", perQuality: q{fullhd: 1200}, total: 2},
			{provider: "q", total: 2},
			{provider: "r", active: 1, total: 1},
		}},
		{"all time", time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), []seconds{
			{provider: "p", perQuality: q{hd: 1800, fullhd: 1200}, out: 1, total: 2},
			{provider: "q", perQuality: q{sd: 4500, fullhd: 1800}, in: 1, total: 2},
			{provider: "r", perQuality: q{audio: 330.5}, active: 1, total: 1},
		}},
		{"empty period", hm(10, 0), hm(10, 0), []seconds{
			{provider: "p", total: 2},
			{provider: "q", total: 2},
			{provider: "r", active: 1, total: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkUsage(t, mustUsage(t, s, tt.from, tt.to), tt.want)
		})
	}

	us, err := s.Usage(ctx, day, feb)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{us[0].Provider, us[1].Provider, us[2].Provider}; !slices.Equal(got, []string{"p", "q", "r"}) {
		t.Errorf("usage order = %v, want by name", got)
	}
}

func testUsageOfDeletedProvider(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "gone"))
	mustStart(t, s, newStream("h", "gone", "o", s0), 0)
	mustEnd(t, s, "h", s0.Add(10*time.Minute))
	if err := s.DeleteProvider(ctx, "gone", audit("provider.delete")); err != nil {
		t.Fatalf("DeleteProvider: %v", err)
	}
	// Its history stays.
	equalStream(t, mustStream(t, s, "h"), ended(newStream("h", "gone", "o", s0), s0.Add(10*time.Minute), switchboard.EndClient))
	if n := len(mustTrail(t, s, "h")); n != 2 {
		t.Errorf("%d trail entries, want 2", n)
	}
	checkUsage(t, mustUsage(t, s, s0, s0.Add(time.Hour)), []seconds{
		{provider: "gone", perQuality: map[switchboard.Quality]float64{switchboard.QualityHD: 600}, total: 1},
	})
}

func testMonthlyUsage(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	if us, err := s.MonthlyUsageOf(ctx, ""); err != nil || len(us) != 0 {
		t.Fatalf("MonthlyUsageOf on an empty store = %v, %v", us, err)
	}
	jan := switchboard.MonthlyUsage{Provider: "p", Month: "2025-01", Minutes: map[switchboard.Quality]float64{"hd": 1234.5, "audio": 10},
		Cost: 4.93, Currency: "USD"}
	feb := switchboard.MonthlyUsage{Provider: "p", Month: "2025-02", Minutes: map[switchboard.Quality]float64{"sd": 1}, Cost: 0.004, Currency: "USD"}
	qjan := switchboard.MonthlyUsage{Provider: "q", Month: "2025-01", Minutes: map[switchboard.Quality]float64{}, Cost: 0, Currency: "EUR"}
	dec := switchboard.MonthlyUsage{Provider: "q", Month: "2024-12", Minutes: map[switchboard.Quality]float64{"fullhd": 3}, Cost: 0.03, Currency: "EUR"}
	if err := s.SaveMonthlyUsage(ctx, []switchboard.MonthlyUsage{qjan, jan, dec, feb}); err != nil {
		t.Fatalf("SaveMonthlyUsage: %v", err)
	}
	check := func(provider string, want ...switchboard.MonthlyUsage) {
		t.Helper()
		got, err := s.MonthlyUsageOf(ctx, provider)
		if err != nil {
			t.Fatalf("MonthlyUsageOf(%q): %v", provider, err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("MonthlyUsageOf(%q) =\n %+v\nwant\n %+v", provider, got, want)
		}
	}
	check("", feb, jan, qjan, dec)
	check("q", qjan, dec)
	check("nobody")

	// Saving again replaces.
	jan2 := jan
	jan2.Minutes, jan2.Cost = map[switchboard.Quality]float64{"hd": 2000}, 7.98
	if err := s.SaveMonthlyUsage(ctx, []switchboard.MonthlyUsage{jan2}); err != nil {
		t.Fatalf("SaveMonthlyUsage: %v", err)
	}
	check("p", feb, jan2)
	if err := s.SaveMonthlyUsage(ctx, nil); err != nil {
		t.Errorf("SaveMonthlyUsage(nil): %v", err)
	}

	for _, bad := range []switchboard.MonthlyUsage{
		{Provider: "p", Month: "2025-1"},
		{Provider: "p", Month: "2025-13"},
		{Provider: "p", Month: "January"},
		{Provider: "", Month: "2025-03"},
	} {
		// A batch with one bad row saves nothing.
		good := switchboard.MonthlyUsage{Provider: "z", Month: "2025-03", Currency: "USD"}
		err := s.SaveMonthlyUsage(ctx, []switchboard.MonthlyUsage{good, bad})
		wantCode(t, err, switchboard.EInvalid)
	}
	check("z")
}

func testJobRuns(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	ran := func(job, period string) bool {
		t.Helper()
		ok, err := s.JobRan(ctx, job, period)
		if err != nil {
			t.Fatalf("JobRan: %v", err)
		}
		return ok
	}
	mark := func(job, period string) bool {
		t.Helper()
		ok, err := s.MarkJobRan(ctx, job, period, s0)
		if err != nil {
			t.Fatalf("MarkJobRan: %v", err)
		}
		return ok
	}
	if ran("daily-rollup", "2025-01-30") {
		t.Error("JobRan before any run")
	}
	if !mark("daily-rollup", "2025-01-30") {
		t.Error("first MarkJobRan = false")
	}
	if mark("daily-rollup", "2025-01-30") {
		t.Error("second MarkJobRan = true")
	}
	if !ran("daily-rollup", "2025-01-30") || ran("daily-rollup", "2025-01-31") || ran("monthly-rollup", "2025-01-30") {
		t.Error("JobRan does not tell job and period apart")
	}

	// Of concurrent callers exactly one records the run.
	const n = 20
	var wins atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ok, err := s.MarkJobRan(ctx, "monthly-rollup", "2025-01", s0)
			if ok {
				wins.Add(1)
			}
			errs <- err
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Fatalf("concurrent MarkJobRan: %v", err)
	}
	if wins.Load() != 1 {
		t.Errorf("%d concurrent MarkJobRan calls recorded the run, want 1", wins.Load())
	}
}

func testConcurrentStart(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	const (
		n         = 200
		limited   = 120 // of the n, on the limited provider
		maxActive = 37
	)
	var created, full atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			provider, max := "free", 0
			if i < limited {
				provider, max = "limited", maxActive
			}
			st := newStream(fmt.Sprintf("st_%03d", i), provider, "o", s0.Add(time.Duration(i)*time.Millisecond))
			_, ok, err := s.StartStream(ctx, st, assignEntry(st), max)
			switch {
			case switchboard.IsCode(err, switchboard.EUnavailable) && provider == "limited":
				full.Add(1)
			case err != nil:
				errs <- fmt.Errorf("StartStream(%s): %w", st.ID, err)
			case ok:
				created.Add(1)
			default:
				errs <- fmt.Errorf("StartStream(%s): created false without a key", st.ID)
			}
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Error(err)
	}
	if created.Load() != n-limited+maxActive || full.Load() != limited-maxActive {
		t.Errorf("%d created, %d refused; want %d and %d", created.Load(), full.Load(), n-limited+maxActive, limited-maxActive)
	}
	want := map[string]int64{"limited": maxActive, "free": n - limited}
	if got := mustActiveCounts(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
	if got := len(mustList(t, s, switchboard.StreamFilter{Provider: "limited", Limit: 500})); got != maxActive {
		t.Errorf("%d streams on limited, want %d", got, maxActive)
	}
	us := mustUsage(t, s, s0, s0.Add(time.Hour))
	if us["limited"].TotalStreams != maxActive || us["free"].TotalStreams != n-limited || us["limited"].ActiveStreams != maxActive {
		t.Errorf("usage = %+v", us)
	}
}

func testConcurrentIdempotentStart(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	const n = 20
	type result struct {
		id      string
		created bool
		err     error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Each retry of the client gets a fresh id from the service.
			st := newStream(fmt.Sprintf("try_%02d", i), "agora", "token:a", s0)
			st.IdempotencyKey = "one-stream-please"
			got, created, err := s.StartStream(ctx, st, assignEntry(st), 1)
			results <- result{got.ID, created, err}
		})
	}
	wg.Wait()
	close(results)
	var ids []string
	createdN := 0
	for r := range results {
		if r.err != nil {
			t.Fatalf("StartStream: %v", r.err)
		}
		if r.created {
			createdN++
		}
		ids = append(ids, r.id)
	}
	slices.Sort(ids)
	if ids = slices.Compact(ids); len(ids) != 1 || createdN != 1 {
		t.Errorf("%d concurrent starts with one key: streams %v, %d created; want one", n, ids, createdN)
	}
	if sts := mustList(t, s, switchboard.StreamFilter{}); len(sts) != 1 {
		t.Errorf("%d streams stored, want 1", len(sts))
	}
	if u := mustUsage(t, s, s0, s0.Add(time.Hour))["agora"]; u.TotalStreams != 1 {
		t.Errorf("TotalStreams = %d, want 1", u.TotalStreams)
	}
}

func testConcurrentMigrateEnd(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	const (
		n      = 30
		bLimit = 10
	)
	startMany(t, s, n, "a")
	var migrated atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		id := fmt.Sprintf("st_%02d", i)
		wg.Go(func() {
			_, err := s.MigrateStream(ctx, id, switchboard.TrailEntry{At: s0.Add(time.Minute), Kind: switchboard.TrailMigrate,
				Provider: "b", Reason: "failover"}, bLimit)
			switch {
			case err == nil:
				migrated.Add(1)
			case switchboard.IsCode(err, switchboard.EUnavailable), switchboard.IsCode(err, switchboard.EConflict):
			default:
				errs <- fmt.Errorf("MigrateStream(%s): %w", id, err)
			}
		})
		wg.Go(func() {
			if _, _, err := s.EndStream(ctx, id, s0.Add(2*time.Minute), switchboard.EndClient); err != nil {
				errs <- fmt.Errorf("EndStream(%s): %w", id, err)
			}
		})
		wg.Go(func() {
			if _, err := s.Heartbeat(ctx, id, s0.Add(90*time.Second)); err != nil && !switchboard.IsCode(err, switchboard.EConflict) {
				errs <- fmt.Errorf("Heartbeat(%s): %w", id, err)
			}
		})
		wg.Go(func() {
			err := s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: id, At: s0.Add(30 * time.Second), Kind: switchboard.TrailFailure,
				Provider: "a", Stage: switchboard.StageConnect})
			if err != nil && !switchboard.IsCode(err, switchboard.EConflict) {
				errs <- fmt.Errorf("AppendTrail(%s): %w", id, err)
			}
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Error(err)
	}
	// No bound on migrated: b's limit counts active streams, and ends free places.
	var totalMigrations int64
	for i := range n {
		id := fmt.Sprintf("st_%02d", i)
		st := mustStream(t, s, id)
		if st.Status != switchboard.StreamEnded || st.EndReason != switchboard.EndClient || st.Migrations > 1 {
			t.Errorf("stream %s = %+v, want ended after at most one migration", id, st)
		}
		totalMigrations += int64(st.Migrations)
		ks := trailKinds(mustTrail(t, s, id))
		if ks[0] != switchboard.TrailAssign || ks[len(ks)-1] != switchboard.TrailEnd ||
			strings.Count(strings.Join(ks, " "), "migrate") != st.Migrations || strings.Count(strings.Join(ks, " "), "end") != 1 {
			t.Errorf("stream %s (%d migrations): trail %v", id, st.Migrations, ks)
		}
	}
	if totalMigrations != migrated.Load() {
		t.Errorf("streams record %d migrations, %d succeeded", totalMigrations, migrated.Load())
	}
	if got := mustActiveCounts(t, s); len(got) != 0 {
		t.Errorf("ActiveCounts = %v, want none", got)
	}
	us := mustUsage(t, s, s0, s0.Add(time.Hour))
	m := migrated.Load()
	if a, b := us["a"], us["b"]; a.TotalStreams != n || a.FailoversOut != m || b.TotalStreams != m || b.FailoversIn != m {
		t.Errorf("usage a %+v, b %+v; want %d migrations from a to b", a, b, m)
	}
	// Every stream ran two minutes, split between a and b at one minute when it moved.
	if a, b := us["a"].Seconds[switchboard.QualityHD], us["b"].Seconds[switchboard.QualityHD]; !approx(a, float64(n*120-m*60)) || !approx(b, float64(m*60)) {
		t.Errorf("seconds on a %v, on b %v; want %v and %v", a, b, n*120-m*60, m*60)
	}
}

// Of two EndStream calls at once, and of an EndStream and AbandonStale at
// once, exactly one ends each stream: the caller that publishes
// stream.ended relies on it.
func testConcurrentEnd(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	const n = 20
	startMany(t, s, n, "a")
	endedBy := make([]atomic.Int64, n)
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		id := fmt.Sprintf("st_%02d", i)
		for range 2 {
			wg.Go(func() {
				_, ended, err := s.EndStream(ctx, id, s0.Add(time.Minute), switchboard.EndClient)
				if err != nil {
					errs <- fmt.Errorf("EndStream(%s): %w", id, err)
				}
				if ended {
					endedBy[i].Add(1)
				}
			})
		}
	}
	wg.Go(func() {
		sts, err := s.AbandonStale(ctx, s0.Add(time.Hour))
		if err != nil {
			errs <- fmt.Errorf("AbandonStale: %w", err)
		}
		for _, st := range sts {
			var i int
			if _, err := fmt.Sscanf(st.ID, "st_%d", &i); err != nil {
				errs <- fmt.Errorf("AbandonStale ended %s", st.ID)
				continue
			}
			endedBy[i].Add(1)
		}
	})
	for _, err := range waitErrs(&wg, errs) {
		t.Error(err)
	}
	for i := range n {
		if got := endedBy[i].Load(); got != 1 {
			t.Errorf("stream st_%02d was ended by %d calls, want 1", i, got)
		}
		if ks := trailKinds(mustTrail(t, s, fmt.Sprintf("st_%02d", i))); !slices.Equal(ks, []string{"assign", "end"}) {
			t.Errorf("stream st_%02d: trail kinds = %v", i, ks)
		}
	}
	if got := mustActiveCounts(t, s); len(got) != 0 {
		t.Errorf("ActiveCounts = %v, want none", got)
	}
}

func testConcurrentMigrateCapacity(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	const (
		n     = 40
		limit = 15
	)
	startMany(t, s, n, "x")
	var moved, full atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.MigrateStream(ctx, fmt.Sprintf("st_%02d", i), switchboard.TrailEntry{At: s0.Add(time.Minute),
				Kind: switchboard.TrailMigrate, Provider: "y", Reason: "drain"}, limit)
			switch {
			case err == nil:
				moved.Add(1)
			case switchboard.IsCode(err, switchboard.EUnavailable):
				full.Add(1)
			default:
				errs <- err
			}
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Errorf("MigrateStream: %v", err)
	}
	if moved.Load() != limit || full.Load() != n-limit {
		t.Errorf("%d moved, %d refused; want %d and %d", moved.Load(), full.Load(), limit, n-limit)
	}
	if got, want := mustActiveCounts(t, s), map[string]int64{"x": n - limit, "y": limit}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
}

package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/switchboardhq/switchboard"
)

// A trail entry's statuses (the providers' statuses its decision was made
// on) are written in one of two ways: by the digest of a set stored once in
// status_sets, when the set is known to be committed there, or else inline in
// the entry, as JSON. Every start made on one snapshot of the registry hands
// over the same map (which the caller never writes once it is handed over:
// see switchboard.Store.StartStream), so StartStream stores the map's set
// (once per map: storeStatuses) before its transaction, and the entries then
// name it. With 100 providers, encoding the map for every start cost more
// than the start's own rows, and writing it, about 2.5 KB, was most of the
// bytes a start wrote.

// storedStatuses is a statuses map whose set is committed in status_sets.
type storedStatuses struct {
	m      map[string]switchboard.Status
	digest []byte
}

// statusesDigest returns the digest of a set's JSON: the first 16 bytes of
// its SHA-256.
func statusesDigest(text []byte) []byte {
	sum := sha256.Sum256(text)
	return sum[:16]
}

// storeStatuses makes sure that m's set is committed in status_sets and
// remembers that it is, so that trail entries with m name it. It writes (in
// a transaction of its own) only when m's set is not the one it last stored.
// Storing a set twice changes nothing, so replicas and concurrent starts may
// race to do it.
func (s *Store) storeStatuses(ctx context.Context, m map[string]switchboard.Status) error {
	if len(m) == 0 {
		return nil
	}
	if last := s.statuses.Load(); last != nil && sameMap(last.m, m) {
		return nil
	}
	// Every start that comes with a new snapshot's map misses at once: one
	// of them stores it, and the others find it stored.
	s.statusesMu.Lock()
	defer s.statusesMu.Unlock()
	if last := s.statuses.Load(); last != nil && sameMap(last.m, m) {
		return nil
	}
	text, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode statuses: %w", err)
	}
	digest := statusesDigest(text)
	if last := s.statuses.Load(); last != nil && bytes.Equal(last.digest, digest) {
		// The registry is read again every few seconds, into a new map
		// that usually holds the same set: stored already.
		s.statuses.Store(&storedStatuses{m: m, digest: digest})
		return nil
	}
	if err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO status_sets (digest, statuses) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`),
			digest, string(text))
		return err
	}); err != nil {
		return fmt.Errorf("store statuses: %w", err)
	}
	s.statuses.Store(&storedStatuses{m: m, digest: digest})
	return nil
}

// trailStatuses returns the column values of a trail entry's statuses:
// (nil, nil) when there are none; (nil, digest) when m is the map whose set
// storeStatuses last stored; else (JSON, nil).
func (s *Store) trailStatuses(m map[string]switchboard.Status) (text, digest any, err error) {
	if len(m) == 0 {
		return nil, nil, nil
	}
	if last := s.statuses.Load(); last != nil && sameMap(last.m, m) {
		return nil, last.digest, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("encode statuses: %w", err)
	}
	return string(b), nil, nil
}

// sameMap reports whether a and b are the same map (not merely equal ones).
// The map that storedStatuses keeps stays referenced, so its address cannot
// be reused by another map while it is kept.
func sameMap(a, b map[string]switchboard.Status) bool {
	return len(a) == len(b) && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

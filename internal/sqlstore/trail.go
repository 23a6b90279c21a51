package sqlstore

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/switchboardhq/switchboard"
)

// encodedStatuses is a trail entry's statuses map with its encoding.
type encodedStatuses struct {
	m    map[string]switchboard.Status
	text string
}

// statusesText returns the column value of a trail entry's statuses: nil
// when there are none, else their JSON. Every start made on one snapshot of
// the registry hands over the same map (which the caller never writes once
// it is handed over: see switchboard.Store.StartStream), so the last map's
// encoding is kept and used again while the same map comes: with 100
// providers, encoding it for every start cost more than the start's own
// rows. The kept map stays referenced, so its address cannot be reused by
// another map while it is kept.
func (s *Store) statusesText(m map[string]switchboard.Status) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if last := s.statuses.Load(); last != nil && sameMap(last.m, m) {
		return last.text, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode statuses: %w", err)
	}
	e := &encodedStatuses{m: m, text: string(b)}
	s.statuses.Store(e)
	return e.text, nil
}

// sameMap reports whether a and b are the same map (not merely equal ones).
func sameMap(a, b map[string]switchboard.Status) bool {
	return len(a) == len(b) && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

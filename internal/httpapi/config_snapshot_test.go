package httpapi

import (
	"strconv"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// TestConfigSnapshot: a kept document serves only for the provider
// snapshot (the same slice) and the client settings it was built from, and
// the regions kept are bounded.
func TestConfigSnapshot(t *testing.T) {
	c := newConfigSnapshot()
	recs := []sb.ProviderRecord{{Provider: sb.Provider{Name: "agora"}}}
	client := sb.DefaultSettings().Client()
	if _, ok := c.get("", recs, client); ok {
		t.Fatal("a document before any was built")
	}
	d := c.put("", recs, client, []byte(`{"a":1}`))
	if string(d.body) != "{\"a\":1}\n" || d.etag != configETag([]byte(`{"a":1}`)) || len(d.etag) != 26 {
		t.Fatalf("document %q, etag %s", d.body, d.etag)
	}
	if got, ok := c.get("", recs, client); !ok || got.etag != d.etag {
		t.Fatalf("the same snapshot: %v %+v", ok, got)
	}
	// An equal copy is another snapshot: the service made a new one.
	if _, ok := c.get("", append([]sb.ProviderRecord(nil), recs...), client); ok {
		t.Error("served for another provider snapshot")
	}
	other := client
	other.MaxRetries++
	if _, ok := c.get("", recs, other); ok {
		t.Error("served for other settings")
	}
	if _, ok := c.get("eu-west", recs, client); ok {
		t.Error("served for another region")
	}
	if _, ok := c.get("", nil, client); ok {
		t.Error("served for an empty registry")
	}
	for i := range configSnapshotRegions + 5 {
		c.put("r-"+strconv.Itoa(i), recs, client, []byte(`{}`))
	}
	c.mu.RLock()
	n := len(c.docs)
	c.mu.RUnlock()
	if n > configSnapshotRegions {
		t.Errorf("%d regions kept, at most %d", n, configSnapshotRegions)
	}
}

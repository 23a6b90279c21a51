package sqlstore

import (
	"testing"

	"github.com/switchboardhq/switchboard/internal/storetest"
)

func TestStreamsConformance(t *testing.T) {
	storetest.RunStreams(t, func(t *testing.T) storetest.StreamStoreUnderTest {
		dsn, _ := tempDSN(t)
		return mustOpen(t, dsn, newSealer(t))
	})
}

func TestStreamsConformanceMemory(t *testing.T) {
	storetest.RunStreams(t, func(t *testing.T) storetest.StreamStoreUnderTest {
		return mustOpen(t, "sqlite::memory:", newSealer(t))
	})
}

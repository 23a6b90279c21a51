package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

// An app creates one Client for its lifetime, with one MediaEngine per
// provider kind it supports, and starts streams through it. The simulated
// engine stands in for the app's Agora and ZEGOCLOUD engines here.
func Example() {
	eng := clienttest.New(20 * time.Millisecond)
	c, err := client.New("https://switchboard.example.com", os.Getenv("SWITCHBOARD_TOKEN"),
		client.WithEngine(client.KindAgora, eng),
		client.WithEngine(client.KindZegocloud, eng),
		client.WithLogger(slog.Default()),
		client.WithWatchdog(5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Start(ctx, "live-42", client.WithUserID("host-7"), client.WithRole(client.RolePublisher), client.WithQuality(client.QualityHD))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for st := range s.States() {
			switch st := st.(type) {
			case client.Migrated:
				fmt.Printf("moved from %s to %s, %s without media\n", st.From, st.To, st.Gap)
			case client.Failed:
				fmt.Println("stream lost:", st.Err)
			}
		}
	}()
	// ... the stream runs until the app ends it.
	if err := s.Close(context.Background()); err != nil {
		log.Print(err)
	}
}

// States are typed values: a type switch tells them apart.
func ExampleState() {
	states := []client.State{
		client.Connecting{Provider: "agora-main", Attempt: 1},
		client.Live{Provider: "agora-main"},
		client.FailingOver{From: "agora-main", Reason: "connection_lost on agora-main"},
		client.Migrated{From: "agora-main", To: "zego-backup", Reason: "connection_lost on agora-main", Gap: 84 * time.Millisecond},
		client.Live{Provider: "zego-backup"},
	}
	for _, st := range states {
		fmt.Println(st)
	}
	// Output:
	// connecting to agora-main (attempt 1)
	// live on agora-main
	// failing over from agora-main: connection_lost on agora-main
	// migrated from agora-main to zego-backup in 84ms: connection_lost on agora-main
	// live on zego-backup
}

// MediaError values say what an engine saw; every kind makes the SDK fail
// over at once.
func ExampleMediaError() {
	err := fmt.Errorf("join: %w", client.MediaError{Kind: client.TokenRejected, Err: errors.New("invalid token")})
	var me client.MediaError
	if errors.As(err, &me) {
		fmt.Println(me.Kind)
	}
	// Output: token_rejected
}

// With MigrateGradually, live streams follow an admin's new priorities at a
// bounded rate instead of staying where they are.
func ExampleWithPolicy() {
	eng := clienttest.New(0)
	c, err := client.New("https://switchboard.example.com", "sbt_...",
		client.WithEngine(client.KindLiveKit, eng),
		client.WithPolicy(client.MigrateGradually{Rate: 5}), // at most 5 streams per second
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

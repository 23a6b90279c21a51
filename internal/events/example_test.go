package events_test

import (
	"context"
	"fmt"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
)

// Another part of the server reacts to status changes through an in-process
// subscription.
func ExampleHub_Subscribe() {
	hub := events.New(events.Options{})
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	statuses := hub.Subscribe(ctx, func(e switchboard.Event) bool {
		return e.Type == switchboard.EventProviderStatus
	})
	hub.Publish(switchboard.Event{Type: switchboard.EventProviderCreated, Audience: switchboard.RoleClient})
	hub.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient, Data: "down"})

	e := <-statuses
	fmt.Println(e.ID, e.Type, e.Data)
	// Output: 2 provider.status down
}

package livekit_test

import (
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/livekit"
)

func ExampleMintJoinToken() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	token, err := livekit.MintJoinToken("APIexample", "an-api-secret-of-at-least-32-characters",
		"stage-1", "viewer-42", false, time.Hour, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := livekit.VerifyTokenAt(token, "APIexample", "an-api-secret-of-at-least-32-characters", now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Subject, c.Video.Room, *c.Video.CanPublish, *c.Video.CanSubscribe, c.ExpiresAt.UTC())
	// Output: viewer-42 stage-1 false true 2026-03-01 13:00:00 +0000 UTC
}

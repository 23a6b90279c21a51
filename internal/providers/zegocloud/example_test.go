package zegocloud_test

import (
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

func ExampleBuild04() {
	const secret = "0123456789abcdef0123456789abcdef"
	payload, _ := zegocloud.RoomPayload("lobby", true)
	now := time.Unix(1_700_000_000, 0)
	tok, err := zegocloud.Build04(1234567890, "alice", secret, 3600, payload, now, nil)
	if err != nil {
		panic(err)
	}
	c, err := zegocloud.Decrypt04(tok, secret)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.UserID, c.ExpiresAt().UTC(), c.Payload)
	// Output: alice 2023-11-14 23:13:20 +0000 UTC {"room_id":"lobby","privilege":{"1":1,"2":1},"stream_id_list":null}
}

package zegocloudfake_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud/zegocloudfake"
)

func ExampleNew() {
	fake, err := zegocloudfake.New(zegocloudfake.Config{AppID: 1234567890, ServerSecret: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res := (&zegocloud.Adapter{}).Probe(ctx, fake.Provider("zego-demo"))
	fmt.Println(res.OK)
	// Output: true
}

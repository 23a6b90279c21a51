package agorafake_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
)

func ExampleNew() {
	fake, err := agorafake.New(agorafake.Config{
		AppID: "0123456789abcdef0123456789abcdef", CustomerID: "customer", CustomerSecret: "secret",
	})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res := (&agora.Adapter{}).Probe(ctx, fake.Provider("agora-demo"))
	fmt.Println(res.OK)
	// Output: true
}

package agora_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora"
)

func ExampleBuildRTCToken() {
	const (
		appID = "970CA35de60c44645bbae8a215061b33"
		cert  = "5CFd2fd1755d40ecb72977518be15d3b"
	)
	tok, err := agora.BuildRTCToken(appID, cert, "lobby", 42, true, 3600, 3600, 1_700_000_000, 1234)
	if err != nil {
		panic(err)
	}
	at, err := agora.Parse(tok)
	if err != nil {
		panic(err)
	}
	rtc, _ := at.Service(agora.ServiceRTC)
	fmt.Println(at.Verify(cert), rtc.ChannelName, rtc.UID, len(rtc.Privileges), at.ExpiresAt().UTC())
	// Output: <nil> lobby 42 4 2023-11-14 23:13:20 +0000 UTC
}

func ExampleNewFake() {
	fake, err := agora.NewFake(agora.FakeConfig{
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

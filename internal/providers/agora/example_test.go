package agora_test

import (
	"fmt"

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

package livekitfake_test

import (
	"fmt"

	"github.com/switchboardhq/switchboard/internal/providers/livekit/livekitfake"
)

func ExampleNew() {
	f, err := livekitfake.New(livekitfake.Config{}) // the --dev key pair
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	f.AddRoom("stage-1")
	// Point a provider of kind livekit at f.URL() with livekit.DevAPIKey and
	// livekit.DevAPISecret; f.Faults() injects refusals, hangs, 5xx and latency.
	fmt.Println(f.Faults().Mode())
	// Output: ok
}

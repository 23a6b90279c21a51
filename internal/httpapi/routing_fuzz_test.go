package httpapi

import (
	"encoding/json"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// FuzzDecodeRouting: any body of PUT /api/routing is either refused with a
// coded error naming what is wrong, or gives a configuration that validates
// and survives a round trip through JSON, as the store keeps it.
func FuzzDecodeRouting(f *testing.F) {
	for _, s := range []string{
		`{"policy":"commit","shares":{"a":0.35,"b":0.65}}`, `{"policy":"optimized","margin":0}`,
		`{"weights":{"quality":1,"latency":0,"health":0,"cost":0}}`, `{"regions":{"eu-west":{"policy":"cost"}}}`,
		`{"regions":{"eu-west":null}}`, `{"shares":{"a":1e308,"b":-1e308}}`, `{"margin":"NaN"}`, `{"shares":null}`,
		`{"regions":{"":{"policy":"priority"}}}`, `{}`, `[]`, `null`, `{"a":`, `{"policy":"commit","shares":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in sb.RoutingInput
		if err := decodeJSON(body, &in); err != nil {
			checkCoded(t, err)
			return
		}
		c, err := in.ApplyTo(sb.DefaultRoutingConfig())
		if err != nil {
			checkCoded(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ApplyTo gave an invalid configuration: %v", err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back := sb.DefaultRoutingConfig()
		if err := json.Unmarshal(b, &back); err != nil || !back.Clone().Equal(c) {
			t.Fatalf("round trip: %s gives %+v, %v", b, back, err)
		}
	})
}

package switchboard

import (
	"encoding/json"
	"testing"
)

func TestRoutingInputApplyTo(t *testing.T) {
	tests := []struct {
		body      string
		wantField string // "" = valid
	}{
		{`{"policy":"priority"}`, ""},
		{`{"policy":"balanced"}`, ""},
		{`{"policy":"optimized"}`, ""},
		{`{"policy":"cost"}`, ""},
		{`{"policy":"commit","shares":{"a":0.35,"b":0.65}}`, ""},
		{`{"policy":"commit"}`, "shares"},
		{`{"policy":"fastest"}`, "policy"},
		{`{"policy":""}`, "policy"},
		{`{"shares":{"a":0.5,"b":0.4}}`, "shares"},
		{`{"shares":{"a":0,"b":1}}`, "shares.a"},
		{`{"shares":{"a":1.5}}`, "shares.a"},
		{`{"shares":{"Bad Name":1}}`, "shares"},
		{`{"weights":{"quality":1,"latency":0,"health":0,"cost":0}}`, ""},
		{`{"weights":{"quality":0,"latency":0,"health":0,"cost":0}}`, "weights"},
		{`{"weights":{"quality":-0.1,"latency":1,"health":0,"cost":0}}`, "weights.quality"},
		{`{"weights":{"quality":0.5,"latency":2,"health":0,"cost":0}}`, "weights.latency"},
		{`{"margin":0}`, ""},
		{`{"margin":50}`, ""},
		{`{"margin":-1}`, "margin"},
		{`{"margin":51}`, "margin"},
		{`{"regions":{"eu-west":{"policy":"optimized"}}}`, ""},
		{`{"regions":{"eu-west":{"policy":"best"}}}`, "regions.eu-west.policy"},
		{`{"regions":{"EU":{"policy":"cost"}}}`, "regions.EU"},
		{`{"regions":{"eu-west":{"policy":"commit"}}}`, "regions.eu-west.shares"},
		{`{"regions":{"eu-west":{"policy":"commit","shares":{"a":1}}}}`, ""},
		{`{"regions":{"eu-west":{"policy":"optimized","margin":99}}}`, "regions.eu-west.margin"},
		{`{"regions":{"eu-west":{"policy":"optimized","weights":{"quality":0,"latency":0,"health":0,"cost":0}}}}`, "regions.eu-west.weights"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var in RoutingInput
			if err := json.Unmarshal([]byte(tt.body), &in); err != nil {
				t.Fatal(err)
			}
			got, err := in.ApplyTo(DefaultRoutingConfig())
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ApplyTo: %v", err)
				}
				if err := got.Validate(); err != nil {
					t.Fatalf("the result does not validate: %v", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != EInvalid || e.Field != tt.wantField {
				t.Fatalf("err = %v, want EInvalid on %s", err, tt.wantField)
			}
		})
	}
}

// TestRoutingInputKeeps checks that the fields a PUT leaves out keep their
// values, and that a region given as null is removed.
func TestRoutingInputKeeps(t *testing.T) {
	c := DefaultRoutingConfig()
	var in RoutingInput
	if err := json.Unmarshal([]byte(`{"policy":"commit","shares":{"a":0.25,"b":0.75},"regions":{"eu-west":{"policy":"optimized","margin":10},"us-east":{"policy":"cost"}}}`), &in); err != nil {
		t.Fatal(err)
	}
	c, err := in.ApplyTo(c)
	if err != nil {
		t.Fatal(err)
	}
	var in2 RoutingInput
	if err := json.Unmarshal([]byte(`{"margin":7,"regions":{"us-east":null}}`), &in2); err != nil {
		t.Fatal(err)
	}
	c2, err := in2.ApplyTo(c)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Policy != PolicyCommit || c2.Shares["b"] != 0.75 || c2.Margin != 7 || c2.Weights != DefaultRoutingWeights() {
		t.Fatalf("after a partial update: %+v", c2)
	}
	if _, ok := c2.Regions["us-east"]; ok || c2.Regions["eu-west"].Policy != PolicyOptimized {
		t.Fatalf("regions: %+v", c2.Regions)
	}
	if c.Margin != DefaultRoutingMargin || len(c.Regions) != 2 {
		t.Fatalf("ApplyTo changed its input: %+v", c)
	}
	if c.Equal(c2) || !c2.Equal(c2.Clone()) {
		t.Fatal("Equal")
	}
	e := c2.For("eu-west")
	if e.Scope != "eu-west" || e.Policy != PolicyOptimized || e.Margin != 10 || e.Shares["a"] != 0.25 {
		t.Fatalf("For(eu-west) = %+v", e)
	}
	if e := c2.For("ap-south"); e.Scope != "" || e.Policy != PolicyCommit || e.Margin != 7 {
		t.Fatalf("For(ap-south) = %+v", e)
	}
}

package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

const (
	secretSigning  = "whsec-SIGNING-never-shown-0123"
	secretSMTPPass = "smtp-PASSWORD-never-shown-42"
)

// webhookChannel is the body of a webhook channel to the env's receiver.
func (e *testEnv) webhookChannel(name string) map[string]any {
	return map[string]any{"name": name, "kind": "webhook", "config": map[string]any{"url": e.hook.URL + "/hook"},
		"secrets": map[string]any{"signingSecret": secretSigning}}
}

// channel makes sure the channel matrix-ch exists and returns its name.
func (e *testEnv) channel() string {
	e.t.Helper()
	if _, err := e.store.GetAlertChannel(e.t.Context(), "matrix-ch"); err == nil {
		return "matrix-ch"
	}
	e.mustDo("POST", "/api/alerts/channels", e.tokens[sb.RoleSuperadmin], e.webhookChannel("matrix-ch"), 201, nil)
	return "matrix-ch"
}

func withChannel(suffix string, body any) func(*testEnv) (string, any) {
	return func(e *testEnv) (string, any) {
		name := uniq("ch")
		e.mustDo("POST", "/api/alerts/channels", e.tokens[sb.RoleSuperadmin], e.webhookChannel(name), 201, nil)
		return "/api/alerts/channels/" + name + suffix, body
	}
}

func withRule(body any) func(*testEnv) (string, any) {
	return func(e *testEnv) (string, any) {
		name := uniq("r")
		e.mustDo("POST", "/api/alerts/rules", e.tokens[sb.RoleAdmin],
			map[string]any{"name": name, "events": []string{"provider.critical"}, "channels": []string{e.channel()}}, 201, nil)
		return "/api/alerts/rules/" + name, body
	}
}

func TestAlertsAPI(t *testing.T) {
	e := newTestEnv(t)
	su, admin := e.tokens[sb.RoleSuperadmin], e.tokens[sb.RoleAdmin]
	var ch map[string]any
	e.mustDo("POST", "/api/alerts/channels", su, e.webhookChannel("ops"), 201, &ch)
	if ch["secretsSet"].([]any)[0] != "signingSecret" || ch["secrets"] != nil {
		t.Fatalf("created channel = %v", ch)
	}
	// An update without secrets keeps them; the test send still signs.
	e.mustDo("PUT", "/api/alerts/channels/ops", su, map[string]any{"kind": "webhook", "config": map[string]any{"url": e.hook.URL + "/other"}}, 200, &ch)
	if ch["config"].(map[string]any)["url"] != e.hook.URL+"/other" || len(ch["secretsSet"].([]any)) != 1 {
		t.Fatalf("updated channel = %v", ch)
	}
	var res struct {
		Delivery sb.Delivery
		Attempt  sb.DeliveryAttempt
	}
	e.mustDo("POST", "/api/alerts/channels/ops/test", admin, nil, 200, &res)
	if res.Attempt.Outcome != sb.OutcomeSent || res.Delivery.Status != sb.DeliverySent || e.hookBodies.Load() != 1 {
		t.Fatalf("test send = %+v (receiver got %d)", res, e.hookBodies.Load())
	}
	// A failing receiver: the outcome says so.
	e.mustDo("POST", "/api/alerts/channels", su, map[string]any{"name": "dead", "kind": "webhook",
		"config": map[string]any{"url": "http://127.0.0.1:1/x"}, "secrets": map[string]any{"signingSecret": secretSigning}}, 201, nil)
	e.mustDo("POST", "/api/alerts/channels/dead/test", admin, nil, 200, &res)
	if res.Attempt.Outcome != sb.OutcomeFailed || res.Attempt.Error == "" {
		t.Fatalf("test send to a dead receiver = %+v", res)
	}
	var atts struct{ Attempts []sb.DeliveryAttempt }
	e.mustDo("GET", "/api/alerts/deliveries", admin, nil, 200, &atts)
	if len(atts.Attempts) != 2 || atts.Attempts[0].Channel != "dead" || atts.Attempts[1].Outcome != sb.OutcomeSent {
		t.Fatalf("deliveries = %+v", atts)
	}
	e.mustDo("GET", "/api/alerts/deliveries?channel=ops&limit=1", admin, nil, 200, &atts)
	if len(atts.Attempts) != 1 || atts.Attempts[0].Channel != "ops" {
		t.Fatalf("deliveries of ops = %+v", atts)
	}

	var rule sb.AlertRule
	e.mustDo("POST", "/api/alerts/rules", admin, map[string]any{"name": "oncall", "events": []string{"provider.critical", "failover.storm"},
		"channels": []string{"ops"}, "repeatInterval": "30m", "minSeverity": "warning"}, 201, &rule)
	if !rule.Enabled || rule.RepeatInterval.D().Minutes() != 30 || rule.StormMigrations != sb.DefaultStormMigrations {
		t.Fatalf("rule = %+v", rule)
	}
	e.mustDo("PUT", "/api/alerts/rules/oncall", admin, map[string]any{"events": []string{"provider.critical"}, "channels": []string{"ops", "dead"}, "enabled": false}, 200, &rule)
	if rule.Enabled || len(rule.Channels) != 2 {
		t.Fatalf("replaced rule = %+v", rule)
	}
	// A channel in use cannot go; once the rule is gone it can.
	if st, b := e.do("DELETE", "/api/alerts/channels/ops", su, nil); st != 409 {
		t.Fatalf("delete of a channel in use: %d %s", st, b)
	}
	e.mustDo("DELETE", "/api/alerts/rules/oncall", admin, nil, 204, nil)
	e.mustDo("DELETE", "/api/alerts/channels/ops", su, nil, 204, nil)
	if st, _ := e.do("GET", "/api/alerts/channels/ops", admin, nil); st != 404 {
		t.Fatalf("deleted channel: %d", st)
	}
	// Admins read channels but do not write them.
	if st, _ := e.do("POST", "/api/alerts/channels", admin, e.webhookChannel("x")); st != 403 {
		t.Fatalf("admin create channel: %d", st)
	}
}

// TestAlertsBadInput: each bad channel or rule is refused with 400 naming
// the field, and nothing is stored or audited.
func TestAlertsBadInput(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.channel()
	snapshot := func() string {
		_, a := e.do("GET", "/api/alerts/channels", su, nil)
		_, b := e.do("GET", "/api/alerts/rules", su, nil)
		_, c := e.do("GET", "/api/audit", su, nil)
		return string(a) + string(b) + string(c)
	}
	before := snapshot()
	with := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	hook := e.webhookChannel("fresh")
	email := map[string]any{"name": "mail", "kind": "email", "config": map[string]any{"host": "smtp.example.com", "port": 587,
		"tls": "starttls", "from": "sb@example.com", "to": []string{"oncall@example.com"}}, "secrets": map[string]any{"username": "u", "password": secretSMTPPass}}
	emailCfg := func(kv ...any) map[string]any {
		return with(email, "config", with(email["config"].(map[string]any), kv...))
	}
	rule := map[string]any{"name": "r", "events": []string{"provider.critical"}, "channels": []string{"matrix-ch"}}
	const C, R = "/api/alerts/channels", "/api/alerts/rules"
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"malformed", "POST", C, `{"name":`, "body"},
		{"unknown kind", "POST", C, with(hook, "kind", "carrier-pigeon"), "kind"},
		{"missing kind", "POST", C, map[string]any{"name": "x"}, "kind"},
		{"bad name", "POST", C, with(hook, "name", "Ops Team"), "name"},
		{"webhook url invalid", "POST", C, with(hook, "config", map[string]any{"url": "not a url"}), "config.url"},
		{"webhook url ftp", "POST", C, with(hook, "config", map[string]any{"url": "ftp://example.com/x"}), "config.url"},
		{"webhook url userinfo", "POST", C, with(hook, "config", map[string]any{"url": "https://u:p@example.com/x"}), "config.url"},
		{"webhook no secret", "POST", C, with(hook, "secrets", map[string]any{}), "secrets.signingSecret"},
		{"webhook short secret", "POST", C, with(hook, "secrets", map[string]any{"signingSecret": "short"}), "secrets.signingSecret"},
		{"unknown secret", "POST", C, with(hook, "secrets", map[string]any{"token": "x"}), "secrets.token"},
		{"unknown config", "POST", C, with(hook, "config", map[string]any{"url": "https://example.com", "colour": "red"}), "config.colour"},
		{"slack bad url", "POST", C, map[string]any{"name": "s", "kind": "slack", "secrets": map[string]any{"webhookUrl": "hooks.slack.com"}}, "secrets.webhookUrl"},
		{"pagerduty no key", "POST", C, map[string]any{"name": "p", "kind": "pagerduty"}, "secrets.routingKey"},
		{"pagerduty bad base", "POST", C, map[string]any{"name": "p", "kind": "pagerduty", "config": map[string]any{"baseUrl": "x"}, "secrets": map[string]any{"routingKey": "k"}}, "config.baseUrl"},
		{"email bad from", "POST", C, emailCfg("from", "not-an-address"), "config.from"},
		{"email bad to", "POST", C, emailCfg("to", []string{"oncall@example.com", "nobody"}), "config.to"},
		{"email display name", "POST", C, emailCfg("to", []string{"On Call <oncall@example.com>"}), "config.to"},
		{"email no to", "POST", C, emailCfg("to", []string{}), "config.to"},
		{"email bad tls", "POST", C, emailCfg("tls", "ssl"), "config.tls"},
		{"email bad port", "POST", C, emailCfg("port", 70000), "config.port"},
		{"email no host", "POST", C, emailCfg("host", ""), "config.host"},
		{"email password alone", "POST", C, with(email, "secrets", map[string]any{"password": secretSMTPPass}), "secrets.password"},
		{"sms bad sid", "POST", C, map[string]any{"name": "t", "kind": "sms", "config": map[string]any{"accountSid": "xyz", "from": "+15550100", "to": []string{"+15550111"}}, "secrets": map[string]any{"authToken": "t"}}, "config.accountSid"},
		{"sms bad number", "POST", C, map[string]any{"name": "t", "kind": "sms", "config": map[string]any{"accountSid": "AC0123456789abcdef0123456789abcdef", "from": "+15550100", "to": []string{"555"}}, "secrets": map[string]any{"authToken": "t"}}, "config.to"},
		{"duplicate channel", "POST", C, e.webhookChannel("matrix-ch"), ""},
		{"update kind", "PUT", C + "/matrix-ch", map[string]any{"kind": "slack"}, "kind"},
		{"update name", "PUT", C + "/matrix-ch", with(hook, "name", "other"), "name"},
		{"update bad url", "PUT", C + "/matrix-ch", map[string]any{"kind": "webhook", "config": map[string]any{"url": "::"}}, "config.url"},
		{"rule unknown event", "POST", R, with(rule, "events", []string{"provider.exploded"}), "events"},
		{"rule no events", "POST", R, with(rule, "events", []string{}), "events"},
		{"rule recovered alone", "POST", R, with(rule, "events", []string{"provider.recovered"}), "events"},
		{"rule unknown channel", "POST", R, with(rule, "channels", []string{"ghost"}), "channels"},
		{"rule no channels", "POST", R, with(rule, "channels", []string{}), "channels"},
		{"rule repeat 30s", "POST", R, with(rule, "repeatInterval", "30s"), "repeatInterval"},
		{"rule repeat bad", "POST", R, with(rule, "repeatInterval", "often"), "repeatInterval"},
		{"rule severity", "POST", R, with(rule, "minSeverity", "apocalyptic"), "minSeverity"},
		{"rule storm window", "POST", R, with(rule, "events", []string{"failover.storm"}, "stormWindow", "10s"), "stormWindow"},
		{"rule storm count", "POST", R, with(rule, "events", []string{"failover.storm"}, "stormMigrations", -1), "stormMigrations"},
		{"rule bad provider", "POST", R, with(rule, "providers", []string{""}), "providers"},
		{"deliveries bad limit", "GET", "/api/alerts/deliveries?limit=0", nil, "limit"},
		{"deliveries bad before", "GET", "/api/alerts/deliveries?before=x", nil, "before"},
		{"deliveries bad channel", "GET", "/api/alerts/deliveries?channel=A%20B", nil, "channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			st, b := e.do(c.method, c.path, su, c.body)
			want := 400
			if c.name == "duplicate channel" {
				want = 409
			}
			if st != want {
				t.Fatalf("status %d, want %d: %s", st, want, b)
			}
			var eb errorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", eb.Error.Field, c.field, b)
			}
			if strings.Contains(string(b), secretSigning) || strings.Contains(string(b), secretSMTPPass) {
				t.Fatalf("the error echoes a secret: %s", b)
			}
			if after := snapshot(); after != before {
				t.Fatalf("a rejected write changed channels, rules or the audit log")
			}
		})
	}
	e.t = t
	if st, _ := e.do("POST", "/api/alerts/channels/nope/test", su, nil); st != 404 {
		t.Fatalf("test of an unknown channel: %d", st)
	}
}

// TestAlertsNoSecretLeaks looks for channel secrets in every response, the
// audit log and the logs.
func TestAlertsNoSecretLeaks(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	var bodies []string
	record := func(method, path string, body any) {
		_, b := e.do(method, path, su, body)
		bodies = append(bodies, string(b))
	}
	record("POST", "/api/alerts/channels", e.webhookChannel("hook"))
	record("POST", "/api/alerts/channels", map[string]any{"name": "mail", "kind": "email", "config": map[string]any{"host": "127.0.0.1", "port": 1,
		"tls": "none", "from": "sb@example.com", "to": []string{"oncall@example.com"}}, "secrets": map[string]any{"username": "u", "password": secretSMTPPass}})
	record("PUT", "/api/alerts/channels/mail", map[string]any{"kind": "email", "config": map[string]any{"host": "127.0.0.1", "port": 2,
		"tls": "none", "from": "sb@example.com", "to": []string{"oncall@example.com"}}})
	record("POST", "/api/alerts/channels/hook/test", nil)
	record("POST", "/api/alerts/channels/mail/test", nil)
	record("GET", "/api/alerts/channels", nil)
	record("GET", "/api/alerts/channels/mail", nil)
	record("GET", "/api/alerts/deliveries", nil)
	record("GET", "/api/audit", nil)
	record("DELETE", "/api/alerts/channels/mail", nil)
	record("GET", "/api/audit", nil)
	all := strings.Join(bodies, "\n") + e.logs.String()
	for _, ev := range e.events.Events() {
		b, _ := json.Marshal(ev)
		all += string(b)
	}
	for _, s := range []string{secretSigning, secretSMTPPass} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked", s)
		}
	}
	if !strings.Contains(all, `"secretsSet":["username","password"]`) {
		t.Errorf("the secrets set are not named: %s", bodies[1])
	}
}

func FuzzDecodeAlertChannel(f *testing.F) {
	f.Add([]byte(`{"name":"ops","kind":"webhook","config":{"url":"https://example.com"},"secrets":{"signingSecret":"0123456789abcdef"}}`))
	f.Add([]byte(`{"name":"m","kind":"email","config":{"host":"h","port":25,"tls":"none","from":"a@b.c","to":["x@y.z"]}}`))
	f.Add([]byte(`{"kind":"sms","config":{"to":[1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in sb.ChannelInput
		if err := decodeJSON(data, &in); err != nil {
			if sb.ErrorCode(err) == sb.EInternal {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		if _, err := in.Build(sb.ChannelSecrets{}); err != nil && sb.ErrorCode(err) != sb.EInvalid {
			t.Fatalf("Build: %v", err)
		}
	})
}

func FuzzDecodeAlertRule(f *testing.F) {
	f.Add([]byte(`{"name":"r","events":["provider.critical"],"channels":["ops"],"repeatInterval":"5m"}`))
	f.Add([]byte(`{"name":"s","events":["failover.storm"],"channels":["a"],"stormWindow":"1h","stormMigrations":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in sb.RuleInput
		if err := decodeJSON(data, &in); err != nil {
			if sb.ErrorCode(err) == sb.EInternal {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		if _, err := in.Build(); err != nil && sb.ErrorCode(err) != sb.EInvalid {
			t.Fatalf("Build: %v", err)
		}
	})
}

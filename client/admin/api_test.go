package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/admin"
)

// newAdmin starts the real admin API and returns a superadmin client of it,
// and the URL of an endpoint that "http" providers can probe.
func newAdmin(t *testing.T) (*admin.Client, string) {
	t.Helper()
	c, endpoint, stop := exampleClient()
	t.Cleanup(stop)
	return c, endpoint
}

func httpProvider(name, url string, priority int) sb.ProviderInput {
	kind := sb.KindHTTP
	return sb.ProviderInput{Name: &name, Kind: &kind, Priority: &priority, Config: &sb.ProviderConfig{URL: url}}
}

// Every operation against the real API handler, as the command line uses them.
func TestAgainstTheAPI(t *testing.T) {
	c, endpoint := newAdmin(t)
	ctx := context.Background()

	for i, name := range []string{"alpha", "beta"} {
		p, err := c.CreateProvider(ctx, httpProvider(name, endpoint, i+1))
		if err != nil {
			t.Fatalf("CreateProvider %s: %v", name, err)
		}
		if p.Name != name || p.Kind != sb.KindHTTP || !p.Enabled || !json.Valid(p.JSON) {
			t.Errorf("created %+v", p)
		}
	}
	if _, err := c.CreateProvider(ctx, httpProvider("alpha", endpoint, 1)); !admin.IsStatus(err, http.StatusConflict) {
		t.Errorf("second create = %v, want 409", err)
	}
	p, err := c.SetEnabled(ctx, "beta", false)
	if err != nil || p.Enabled || p.Status != sb.StatusDisabled {
		t.Errorf("SetEnabled = %+v, %v; want beta disabled", p, err)
	}
	if p, err = c.GetProvider(ctx, "beta"); err != nil || p.Enabled {
		t.Errorf("GetProvider = %+v, %v", p, err)
	}
	l, err := c.ReorderProviders(ctx, []string{"beta", "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range l.Providers {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"beta", "alpha"}) || !json.Valid(l.JSON) {
		t.Errorf("after reorder: %v", names)
	}
	if l, err = c.ListProviders(ctx); err != nil || len(l.Providers) != 2 {
		t.Errorf("ListProviders = %+v, %v", l, err)
	}

	r, err := c.CheckProvider(ctx, "alpha")
	if err != nil || r.Name != "alpha" || !r.Probed || !json.Valid(r.JSON) {
		t.Errorf("CheckProvider = %+v, %v", r, err)
	}
	all, err := c.CheckAllProviders(ctx)
	if err != nil || len(all.Results) != 1 || all.Results[0].Name != "alpha" {
		t.Errorf("CheckAllProviders = %+v, %v; want the enabled provider only", all, err)
	}

	tok, err := c.CreateToken(ctx, "ci", "client")
	if err != nil || tok.Secret == "" || tok.Role != "client" {
		t.Fatalf("CreateToken = %+v, %v", tok, err)
	}
	as, err := admin.New(c.BaseURL(), tok.Secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := as.Me(ctx); err != nil || id.Kind != "token" || id.Role != "client" {
		t.Errorf("Me = %+v, %v", id, err)
	}
	if _, err := as.ListProviders(ctx); !admin.IsStatus(err, http.StatusForbidden) {
		t.Errorf("a client token listed providers: %v", err)
	}
	if err := c.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	tl, err := c.ListTokens(ctx)
	if err != nil || len(tl.Tokens) != 1 || tl.Tokens[0].RevokedAt == nil {
		t.Errorf("ListTokens = %+v, %v; want the revoked token", tl, err)
	}

	if err := c.DeleteProvider(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetProvider(ctx, "beta")
	var e *admin.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("GetProvider after delete = %v, want 404 not_found", err)
	}
}

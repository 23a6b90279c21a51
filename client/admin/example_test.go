package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/admin"
)

// exampleClient starts the real admin API on a loopback server, registers
// the named "http" providers with priorities 1, 2..., and returns a client of
// it with the bootstrap token, the URL of an endpoint that "http" providers
// can probe, and a function that stops it all.
func exampleClient(providers ...string) (c *admin.Client, endpoint string, stop func()) {
	url, endpoint, stopServer, err := startServer()
	if err == nil {
		c, err = admin.New(url, bootstrapToken, nil)
	}
	for i, name := range providers {
		if err == nil {
			_, err = c.CreateProvider(context.Background(), httpProvider(name, endpoint, i+1))
		}
	}
	if err != nil {
		panic(err)
	}
	return c, endpoint, func() { c.CloseIdleConnections(); stopServer() }
}

// The examples run against the real admin API on a loopback server.
func Example() {
	c, endpoint, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	for i, name := range []string{"primary", "backup"} {
		kind, priority := sb.KindHTTP, i+1
		in := sb.ProviderInput{Name: &name, Kind: &kind, Priority: &priority, Config: &sb.ProviderConfig{URL: endpoint}}
		if _, err := c.CreateProvider(ctx, in); err != nil {
			fmt.Println(err)
			return
		}
	}
	if _, err := c.ReorderProviders(ctx, []string{"backup", "primary"}); err != nil {
		fmt.Println(err)
		return
	}
	l, err := c.ListProviders(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range l.Providers {
		fmt.Println(p.Priority, p.Name, p.Kind, p.Enabled)
	}
	// Output:
	// 1 backup http true
	// 2 primary http true
}

// The server's error answers are *admin.Error values, the same type as
// client.Error.
func ExampleError() {
	c, _, stop := exampleClient()
	defer stop()

	_, err := c.GetProvider(context.Background(), "nope")
	var e *admin.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code)
	}
	fmt.Println(admin.IsStatus(err, http.StatusNotFound))
	// Output:
	// 404 not_found
	// true
}

func ExampleClient_SetEnabled() {
	c, _, stop := exampleClient("primary")
	defer stop()
	ctx := context.Background()

	p, err := c.SetEnabled(ctx, "primary", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Enabled, p.Status)
	// Output: primary false DISABLED
}

func ExampleClient_CheckProvider() {
	c, _, stop := exampleClient("primary")
	defer stop()
	ctx := context.Background()

	r, err := c.CheckProvider(ctx, "primary")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Name, r.Probed, r.Healthy, r.Stage == "")
	// Output: primary true true true
}

func ExampleClient_CreateToken() {
	c, _, stop := exampleClient()
	defer stop()
	ctx := context.Background()

	// The secret is shown once: hand it to the app that embeds the SDK.
	t, err := c.CreateToken(ctx, "mobile-app", "client")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Name, t.Role, t.Secret != "")

	// The app's token authenticates as itself.
	app, err := admin.New(c.BaseURL(), t.Secret, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.CloseIdleConnections()
	me, err := app.Me(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(me.Name, me.Kind, me.Role)
	// Output:
	// mobile-app client true
	// mobile-app token client
}

// Do reaches the endpoints that have no method of their own.
func ExampleClient_Do() {
	c, _, stop := exampleClient("primary")
	defer stop()
	ctx := context.Background()

	var audit struct {
		Entries []struct {
			Action string `json:"action"`
		} `json:"entries"`
	}
	if err := c.Do(ctx, http.MethodGet, "/api/audit", nil, &audit); err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range audit.Entries {
		fmt.Println(e.Action)
	}
	// Output: provider.create
}

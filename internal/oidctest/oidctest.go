// Package oidctest runs a real OpenID provider on loopback for tests of the
// single sign-on: zitadel/oidc's OpenID provider (package op) with the
// in-memory storage and the login page of its example server, and a "groups"
// claim added per user.
package oidctest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	zstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is an account at the provider.
type User struct {
	ID, Username, Password, Email string
	Groups                        []string
}

// Provider is an OpenID provider listening on loopback.
type Provider struct {
	// Issuer is the provider's issuer URL.
	Issuer       string
	ClientID     string
	ClientSecret string
	srv          *httptest.Server
}

// New reserves the provider's address (Issuer is known at once) without
// serving yet: Start registers the client with its redirect URL.
func New(t testing.TB) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	return &Provider{Issuer: "http://" + srv.Listener.Addr().String(), ClientID: "switchboard",
		ClientSecret: "oidc-client-secret-5f1e9a77c3", srv: srv}
}

// Start serves the provider with one web client (ClientID, ClientSecret,
// authenticating with HTTP Basic) allowed to redirect to redirectURL, and
// users.
func (p *Provider) Start(redirectURL string, users ...User) {
	us := userStore{byID: map[string]*zstorage.User{}, groups: map[string][]string{}}
	for _, u := range users {
		us.byID[u.ID] = &zstorage.User{ID: u.ID, Username: u.Username, Password: u.Password, Email: u.Email,
			EmailVerified: true, FirstName: u.Username, PreferredLanguage: language.English}
		us.groups[u.ID] = u.Groups
	}
	clients := map[string]*zstorage.Client{p.ClientID: zstorage.WebClient(p.ClientID, p.ClientSecret, redirectURL)}
	st := &storage{Storage: zstorage.NewStorageWithClients(us, clients), groups: us.groups}
	p.srv.Config.Handler = exampleop.SetupServer(p.Issuer, st, nil, false)
	p.srv.Start()
}

// userStore is the example storage's user directory, from the test's users.
type userStore struct {
	byID   map[string]*zstorage.User
	groups map[string][]string
}

func (s userStore) GetUserByID(id string) *zstorage.User { return s.byID[id] }

func (s userStore) GetUserByUsername(name string) *zstorage.User {
	for _, u := range s.byID {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (s userStore) ExampleClientID() string { return zstorage.ServiceUserID }

// storage is the example storage with a "groups" claim in the ID token and
// the userinfo of each user.
type storage struct {
	*zstorage.Storage
	groups map[string][]string
}

func (s *storage) addGroups(ui *oidc.UserInfo, subject string) {
	if g, ok := s.groups[subject]; ok && g != nil {
		ui.AppendClaims("groups", g)
	}
}

// SetUserinfoFromRequest adds the groups to the ID token.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, token, scopes); err != nil {
		return err
	}
	s.addGroups(ui, token.GetSubject())
	return nil
}

// SetUserinfoFromToken adds the groups to the userinfo endpoint's answer.
func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, subject)
	return nil
}

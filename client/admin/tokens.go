package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Token is an API token as listed by the server: never the token itself.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"` // client, admin, superadmin or agent
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
}

// CreatedToken is a new token with its secret value, which the server shows
// only once.
type CreatedToken struct {
	Token
	Secret string `json:"token"`

	// JSON is the server's answer as received (it holds the secret too).
	JSON json.RawMessage `json:"-"`
}

// TokenList is the list of API tokens, revoked ones included.
type TokenList struct {
	Tokens []Token `json:"tokens"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// Identity is who the server takes the caller to be.
type Identity struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // user, token or bootstrap
	Role string `json:"role"`
}

const tokensPath = "/api/auth/tokens"

// CreateToken creates an API token named name with role client, admin or
// superadmin.
func (c *Client) CreateToken(ctx context.Context, name, role string) (CreatedToken, error) {
	body := map[string]string{"name": name, "role": role}
	t, raw, err := call[CreatedToken](ctx, c, http.MethodPost, tokensPath, body)
	t.JSON = raw
	return t, err
}

// ListTokens lists the API tokens.
func (c *Client) ListTokens(ctx context.Context) (TokenList, error) {
	l, raw, err := call[TokenList](ctx, c, http.MethodGet, tokensPath, nil)
	l.JSON = raw
	return l, err
}

// RevokeToken revokes the token with the id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, tokensPath+"/"+url.PathEscape(id), nil, nil)
}

// Me returns the caller's identity.
func (c *Client) Me(ctx context.Context) (Identity, error) {
	var id Identity
	err := c.Do(ctx, http.MethodGet, "/api/auth/me", nil, &id)
	return id, err
}

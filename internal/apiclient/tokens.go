package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Token is an API token as listed by the server: never the token itself.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"` // client, admin or superadmin
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
	var raw json.RawMessage
	body := map[string]string{"name": name, "role": role}
	if err := c.Do(ctx, "POST", tokensPath, body, &raw); err != nil {
		return CreatedToken{}, err
	}
	var t CreatedToken
	if err := decodeInto("POST", tokensPath, raw, &t); err != nil {
		return CreatedToken{}, err
	}
	t.JSON = raw
	return t, nil
}

// ListTokens lists the API tokens.
func (c *Client) ListTokens(ctx context.Context) (TokenList, error) {
	var raw json.RawMessage
	if err := c.Do(ctx, "GET", tokensPath, nil, &raw); err != nil {
		return TokenList{}, err
	}
	var l TokenList
	if err := decodeInto("GET", tokensPath, raw, &l); err != nil {
		return TokenList{}, err
	}
	l.JSON = raw
	return l, nil
}

// RevokeToken revokes the token with the id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", tokensPath+"/"+url.PathEscape(id), nil, nil)
}

// Me returns the caller's identity.
func (c *Client) Me(ctx context.Context) (Identity, error) {
	var id Identity
	err := c.Do(ctx, "GET", "/api/auth/me", nil, &id)
	return id, err
}

func decodeInto(method, path string, raw json.RawMessage, out any) error {
	if len(raw) == 0 {
		return fmt.Errorf("%s %s: empty response", method, path)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

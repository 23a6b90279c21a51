package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// User is a dashboard user as the server shows it: never a password.
type User struct {
	Username string `json:"username"`
	Role     string `json:"role"` // admin or superadmin
	Enabled  bool   `json:"enabled"`
	// SSO users log in by single sign-on and have no local password.
	SSO bool `json:"sso"`
	// MustChangePassword: the user has a temporary password, to be changed
	// at the next login.
	MustChangePassword bool       `json:"mustChangePassword"`
	CreatedAt          time.Time  `json:"createdAt"`
	LastLoginAt        *time.Time `json:"lastLoginAt"`

	// JSON is the server's answer as received (by GetUser, CreateUser and
	// UpdateUser).
	JSON json.RawMessage `json:"-"`
}

// UserList is the list of the dashboard's users, ordered by username.
type UserList struct {
	Users []User `json:"users"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// UserUpdate is a change to a user: only the fields set change.
type UserUpdate struct {
	Role    *string `json:"role,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
	// Password sets a new temporary password, which the user must change at
	// the next login; the user's sessions end.
	Password *string `json:"password,omitempty"`
}

const usersPath = "/api/users"

func userPath(username string) string { return usersPath + "/" + url.PathEscape(username) }

// CreateUser adds a user with role admin or superadmin and a temporary
// password, which the user must change at the first login. It needs a
// superadmin token.
func (c *Client) CreateUser(ctx context.Context, username, role, password string) (User, error) {
	body := map[string]string{"username": username, "role": role, "password": password}
	u, raw, err := call[User](ctx, c, http.MethodPost, usersPath, body)
	u.JSON = raw
	return u, err
}

// ListUsers lists the users.
func (c *Client) ListUsers(ctx context.Context) (UserList, error) {
	l, raw, err := call[UserList](ctx, c, http.MethodGet, usersPath, nil)
	l.JSON = raw
	return l, err
}

// GetUser returns one user.
func (c *Client) GetUser(ctx context.Context, username string) (User, error) {
	u, raw, err := call[User](ctx, c, http.MethodGet, userPath(username), nil)
	u.JSON = raw
	return u, err
}

// UpdateUser changes a user's role, enabled state or temporary password.
// Disabling a user, or setting its password, ends its sessions. The last
// enabled superadmin cannot be disabled or demoted (an *Error of status 409).
func (c *Client) UpdateUser(ctx context.Context, username string, up UserUpdate) (User, error) {
	u, raw, err := call[User](ctx, c, http.MethodPut, userPath(username), up)
	u.JSON = raw
	return u, err
}

// DeleteUser deletes a user and ends its sessions. The last enabled
// superadmin cannot be deleted (an *Error of status 409).
func (c *Client) DeleteUser(ctx context.Context, username string) error {
	return c.Do(ctx, http.MethodDelete, userPath(username), nil, nil)
}

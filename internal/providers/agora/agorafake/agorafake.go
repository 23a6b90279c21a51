// Package agorafake is a loopback stand-in for Agora's RESTful API, for tests
// and the demo: it checks HTTP Basic authentication as Agora does and injects
// faults through a fault.Server.
package agorafake

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
)

// The answers of the fake that Agora does not document exactly. Agora documents
// the 401 status but not its body; this one is our stand-in (unverified).
const (
	unauthorizedBody = `{"message":"Invalid authentication credentials"}`
	invalidAppIDBody = `{"message":"invalid appid"}`
)

// Config describes the one project a Fake serves.
type Config struct {
	AppID          string // 32 hex characters
	CustomerID     string
	CustomerSecret string
	// AppCertificate is optional; the fake reports it as the project's sign_key
	// and Provider puts it in the credentials so tokens can be minted.
	AppCertificate string
	// Channels are the live channels the channel list reports.
	Channels []Channel
}

// Channel is a channel the fake reports as live.
type Channel struct {
	Name      string `json:"channel_name"`
	UserCount int    `json:"user_count"`
}

// Fake is a loopback stand-in for Agora's RESTful API. It serves
// GET /dev/v1/projects and GET /dev/v1/channel/{appid} with HTTP Basic
// authentication, and injects faults through its fault.Server.
type Fake struct {
	fault.Fake // URL, Faults and Close
	cfg        Config
	created    time.Time
}

// New starts a fake on an ephemeral loopback port. Close it when done.
func New(cfg Config) (*Fake, error) {
	if !isHex(cfg.AppID, 32) {
		return nil, errors.New("agora fake: AppID must be 32 hex characters")
	}
	if cfg.CustomerID == "" || cfg.CustomerSecret == "" {
		return nil, errors.New("agora fake: CustomerID and CustomerSecret are required")
	}
	f := &Fake{cfg: cfg, created: time.Now()}
	f.cfg.Channels = append([]Channel(nil), cfg.Channels...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dev/v1/projects", f.projects)
	mux.HandleFunc("GET /dev/v1/channel/{appid}", f.channels)
	var err error
	if f.Fake, err = fault.StartFake(mux); err != nil {
		return nil, fmt.Errorf("agora fake: %w", err)
	}
	return f, nil
}

// Provider returns an enabled, normalized agora provider named name that points
// at the fake and holds its credentials.
func (f *Fake) Provider(name string) switchboard.Provider {
	p := switchboard.Provider{
		Name: name, Kind: switchboard.KindAgora, Enabled: true,
		Config: switchboard.ProviderConfig{AppID: f.cfg.AppID, BaseURL: f.URL()},
		Credentials: switchboard.Credentials{
			CustomerID: f.cfg.CustomerID, CustomerSecret: f.cfg.CustomerSecret, AppCertificate: f.cfg.AppCertificate,
		},
	}
	p.Normalize()
	return p
}

func (f *Fake) authorized(r *http.Request) bool {
	if fault.AuthRejected(r) {
		return false
	}
	id, secret, ok := r.BasicAuth()
	return ok &&
		subtle.ConstantTimeCompare([]byte(id), []byte(f.cfg.CustomerID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(f.cfg.CustomerSecret)) == 1
}

func (f *Fake) projects(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	type project struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		VendorKey string `json:"vendor_key"`
		SignKey   string `json:"sign_key"`
		Status    int    `json:"status"`
		Created   int64  `json:"created"`
	}
	b, _ := json.Marshal(map[string][]project{"projects": {{
		ID: "switchboard-fake", Name: "Switchboard fake", VendorKey: f.cfg.AppID,
		SignKey: f.cfg.AppCertificate, Status: 1, Created: f.created.UnixMilli(),
	}}})
	writeJSON(w, http.StatusOK, string(b))
}

func (f *Fake) channels(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	appID := r.PathValue("appid")
	if !isHex(appID, 32) {
		writeJSON(w, http.StatusBadRequest, invalidAppIDBody)
		return
	}
	if appID != f.cfg.AppID {
		writeJSON(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	pageNo := queryInt(r, "page_no", 0)
	pageSize := queryInt(r, "page_size", 100)
	if pageSize < 1 || pageSize > 500 {
		pageSize = 100
	}
	if pageNo < 0 || pageNo > 1_000_000 {
		pageNo = 0
	}
	page := []Channel{}
	if lo := pageNo * pageSize; lo < len(f.cfg.Channels) {
		page = f.cfg.Channels[lo:min(lo+pageSize, len(f.cfg.Channels))]
	}
	type data struct {
		Channels  []Channel `json:"channels"`
		TotalSize int       `json:"total_size"`
	}
	b, _ := json.Marshal(struct {
		Success bool `json:"success"`
		Data    data `json:"data"`
	}{true, data{page, len(f.cfg.Channels)}})
	writeJSON(w, http.StatusOK, string(b))
}

// isHex reports whether s is n hexadecimal digits, as Agora's App IDs are.
func isHex(s string, n int) bool {
	_, err := hex.DecodeString(s)
	return len(s) == n && err == nil
}

func queryInt(r *http.Request, key string, def int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil {
		return def
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

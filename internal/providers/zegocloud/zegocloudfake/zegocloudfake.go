// Package zegocloudfake is a loopback stand-in for ZEGOCLOUD's RTC server API,
// for tests and the demo: it verifies the signed common parameters as the
// real service does and injects faults through a fault.Server.
package zegocloudfake

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

// MaxSkew is how far a request's Timestamp may stray from the server's clock.
const MaxSkew = 10 * time.Minute

// Config describes the one app a Fake serves.
type Config struct {
	AppID        uint32
	ServerSecret string // exactly 32 characters
	// Rooms are the user counts of live rooms; any other room counts 0.
	Rooms map[string]int
	// Now is the fake's clock for the timestamp window; nil means time.Now.
	Now func() time.Time
}

// Fake is a loopback stand-in for ZEGOCLOUD's RTC server API. It verifies the
// signed common parameters like the real service, answers DescribeUserNum,
// and injects faults through its fault.Server. Its answers are HTTP 200 with
// the code in the envelope (the HTTP status of real errors is undocumented).
type Fake struct {
	fault.Fake // URL, Faults and Close
	cfg        Config
	seq        atomic.Uint64
}

// New starts a fake on an ephemeral loopback port. Close it when done.
func New(cfg Config) (*Fake, error) {
	if cfg.AppID == 0 {
		return nil, errors.New("zegocloud fake: AppID is required")
	}
	if len(cfg.ServerSecret) != zegocloud.SecretLength {
		return nil, fmt.Errorf("zegocloud fake: ServerSecret must be %d characters", zegocloud.SecretLength)
	}
	cfg.Rooms = maps.Clone(cfg.Rooms)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fake{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", f.serve)
	var err error
	if f.Fake, err = fault.StartFake(mux); err != nil {
		return nil, fmt.Errorf("zegocloud fake: %w", err)
	}
	return f, nil
}

// Provider returns an enabled, normalized zegocloud provider named name that
// points at the fake and holds its server secret.
func (f *Fake) Provider(name string) switchboard.Provider {
	p := switchboard.Provider{
		Name: name, Kind: switchboard.KindZegocloud, Enabled: true,
		Config:      switchboard.ProviderConfig{AppID: strconv.FormatUint(uint64(f.cfg.AppID), 10), BaseURL: f.URL()},
		Credentials: switchboard.Credentials{ServerSecret: f.cfg.ServerSecret},
	}
	p.Normalize()
	return p
}

type userCount struct {
	RoomID         string `json:"RoomId"`
	UserCount      int    `json:"UserCount"`
	AdminUserCount int    `json:"AdminUserCount"`
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code, msg := f.authenticate(r); code != zegocloud.CodeOK {
		f.answer(w, code, msg, nil)
		return
	}
	switch q.Get("Action") {
	case "DescribeUserNum":
		rooms := q["RoomId[]"]
		if len(rooms) < 1 || len(rooms) > 10 {
			f.answer(w, zegocloud.CodeBadParameter, "RoomId[] must hold 1 to 10 rooms", nil)
			return
		}
		list := make([]userCount, 0, len(rooms))
		for _, room := range rooms {
			list = append(list, userCount{RoomID: room, UserCount: f.cfg.Rooms[room]})
		}
		f.answer(w, zegocloud.CodeOK, "success", map[string]any{"UserCountList": list})
	default:
		f.answer(w, zegocloud.CodeUnsupportedAction, "unsupported action", nil)
	}
}

// authenticate checks the common parameters in the order that reports the
// most specific fault first.
func (f *Fake) authenticate(r *http.Request) (int64, string) {
	q := r.URL.Query()
	switch {
	case q.Get("Action") == "":
		return zegocloud.CodeNoAction, "action is empty"
	case q.Get("SignatureNonce") == "":
		return zegocloud.CodeNoSignatureNonce, "signature nonce is empty"
	case q.Get("Signature") == "":
		return zegocloud.CodeNoSignature, "signature is empty"
	case q.Get("Timestamp") == "":
		return zegocloud.CodeNoTimestamp, "timestamp is empty"
	case q.Get("SignatureVersion") == "":
		return zegocloud.CodeNoSignatureVersion, "signature version is empty"
	case q.Get("SignatureVersion") != "2.0":
		return zegocloud.CodeBadSignatureVer, "unsupported signature version"
	}
	appID, err := strconv.ParseUint(q.Get("AppId"), 10, 32)
	if err != nil {
		return zegocloud.CodeBadAppIDFormat, "appid format error"
	}
	if uint32(appID) != f.cfg.AppID {
		return zegocloud.CodeNoSecret, "get server secret failed"
	}
	ts, err := strconv.ParseInt(q.Get("Timestamp"), 10, 64)
	if err != nil {
		return zegocloud.CodeBadTimestamp, "timestamp format error"
	}
	if skew := f.cfg.Now().Unix() - ts; skew > int64(MaxSkew/time.Second) || skew < -int64(MaxSkew/time.Second) {
		return zegocloud.CodeSignatureExpired, "signature expired"
	}
	want := zegocloud.Sign(f.cfg.AppID, q.Get("SignatureNonce"), f.cfg.ServerSecret, ts)
	if fault.AuthRejected(r) || subtle.ConstantTimeCompare([]byte(want), []byte(q.Get("Signature"))) != 1 {
		return zegocloud.CodeSignatureInvalid, "signature error"
	}
	return zegocloud.CodeOK, ""
}

func (f *Fake) answer(w http.ResponseWriter, code int64, msg string, data any) {
	b, err := json.Marshal(struct {
		Code      int64  `json:"Code"`
		Message   string `json:"Message"`
		RequestID string `json:"RequestId"`
		Data      any    `json:"Data,omitempty"`
	}{code, msg, fmt.Sprintf("fake-%016x", f.seq.Add(1)), data})
	if err != nil {
		http.Error(w, "encode answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

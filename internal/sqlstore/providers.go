package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/secrets"
)

const providerColumns = `p.name, p.display_name, p.kind, p.enabled, p.priority, p.weight,
	p.max_active_streams, p.regions, p.config, p.credentials, p.pricing, p.monthly_budget,
	p.health_check, p.created_at, p.updated_at`

const selectRecord = `SELECT ` + providerColumns + `, ` + healthColumns + `
	FROM providers p JOIN provider_health h ON h.provider = p.name`

// sealedCredentials is the plaintext that is sealed into providers.credentials.
// It names its provider, so that a sealed value copied onto another row is
// refused instead of being used with the wrong provider.
type sealedCredentials struct {
	Provider       string            `json:"provider"`
	CustomerID     string            `json:"customerId,omitempty"`
	CustomerSecret string            `json:"customerSecret,omitempty"`
	AppCertificate string            `json:"appCertificate,omitempty"`
	ServerSecret   string            `json:"serverSecret,omitempty"`
	APIKey         string            `json:"apiKey,omitempty"`
	APISecret      string            `json:"apiSecret,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
}

// sealCredentials returns what is stored for p's credentials: nil when there
// are none. The value is bound to p's destination (switchboard.Provider.Destination):
// it opens only while the provider keeps its name, kind, URLs and method, so
// that credentials whose destination was changed in the database without them
// (by anything other than an update that entered them again) cannot be read.
func (s *Store) sealCredentials(p switchboard.Provider) ([]byte, error) {
	c := p.Credentials
	if c.IsZero() {
		return nil, nil
	}
	pt, err := json.Marshal(sealedCredentials{
		Provider: p.Name, CustomerID: c.CustomerID, CustomerSecret: c.CustomerSecret,
		AppCertificate: c.AppCertificate, ServerSecret: c.ServerSecret,
		APIKey: c.APIKey, APISecret: c.APISecret, Headers: c.Headers,
	})
	if err != nil {
		return nil, fmt.Errorf("encode credentials: %w", err)
	}
	sealed, err := s.sealer.SealBound(pt, p.Destination())
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("seal credentials: %w", err)
	}
	return sealed, nil
}

// openCredentials opens the credentials sealed for p (whose Config is read
// from the same row). legacy reports a value sealed before credentials were
// bound to their destination, which resealLegacy seals again.
func (s *Store) openCredentials(p switchboard.Provider, sealed []byte) (c switchboard.Credentials, legacy bool, err error) {
	name := p.Name
	if sealed == nil {
		return switchboard.Credentials{}, false, nil
	}
	pt, legacy, err := s.sealer.OpenBound(sealed, p.Destination())
	if err != nil {
		if secrets.IsBound(sealed) {
			return c, false, fmt.Errorf("credentials of provider %s: %w (sealed for another provider or destination, or with another secret key)", name, err)
		}
		return c, false, fmt.Errorf("credentials of provider %s: %w (did the secret key change?)", name, err)
	}
	defer clear(pt)
	var sc sealedCredentials
	if err := json.Unmarshal(pt, &sc); err != nil {
		return c, false, fmt.Errorf("credentials of provider %s: malformed", name)
	}
	if sc.Provider != name {
		return c, false, fmt.Errorf("credentials of provider %s: sealed for another provider", name)
	}
	return switchboard.Credentials{
		CustomerID: sc.CustomerID, CustomerSecret: sc.CustomerSecret, AppCertificate: sc.AppCertificate,
		ServerSecret: sc.ServerSecret, APIKey: sc.APIKey, APISecret: sc.APISecret, Headers: sc.Headers,
	}, legacy, nil
}

// providerRow holds the columns of providerColumns as scanned.
type providerRow struct {
	p                                     switchboard.Provider
	kind                                  string
	regions, config, pricing, healthCheck string
	sealed                                []byte
	createdAt, updatedAt                  int64
}

func (r *providerRow) dest() []any {
	p := &r.p
	return []any{&p.Name, &p.DisplayName, &r.kind, &p.Enabled, &p.Priority, &p.Weight,
		&p.MaxActiveStreams, &r.regions, &r.config, &r.sealed, &r.pricing, &p.MonthlyBudget,
		&r.healthCheck, &r.createdAt, &r.updatedAt}
}

// provider decodes the row, leaving the credentials sealed in r.sealed.
func (r *providerRow) provider() (switchboard.Provider, error) {
	p := r.p
	p.Kind = switchboard.Kind(r.kind)
	p.CreatedAt, p.UpdatedAt = goTime(r.createdAt), goTime(r.updatedAt)
	for _, f := range []struct {
		col, src string
		dst      any
	}{
		{"regions", r.regions, &p.Regions},
		{"config", r.config, &p.Config},
		{"pricing", r.pricing, &p.Pricing},
		{"health_check", r.healthCheck, &p.HealthCheck},
	} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return p, fmt.Errorf("provider %s: column %s: %w", p.Name, f.col, err)
		}
	}
	return p, nil
}

// scanRecord reads a row of selectRecord and opens its credentials.
func (s *Store) scanRecord(sc scanner) (switchboard.ProviderRecord, error) {
	var (
		row providerRow
		hs  healthScan
	)
	if err := sc.Scan(append(row.dest(), hs.dest()...)...); err != nil {
		return switchboard.ProviderRecord{}, err
	}
	p, err := row.provider()
	if err != nil {
		return switchboard.ProviderRecord{}, err
	}
	if p.Credentials, _, err = s.openCredentials(p, row.sealed); err != nil {
		return switchboard.ProviderRecord{}, err
	}
	return switchboard.ProviderRecord{Provider: p, Health: hs.health()}, nil
}

// providerValues returns the columns of p except name and the timestamps:
// display_name, kind, enabled, priority, weight, max_active_streams, regions,
// config, credentials, pricing, monthly_budget, health_check.
func (s *Store) providerValues(p switchboard.Provider) ([]any, error) {
	regions := p.Regions
	if regions == nil {
		regions = []string{}
	}
	var enc [4][]byte
	for i, v := range []any{regions, p.Config, p.Pricing, p.HealthCheck} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode provider: %w", err)
		}
		enc[i] = b
	}
	sealed, err := s.sealCredentials(p)
	if err != nil {
		return nil, err
	}
	return []any{p.DisplayName, string(p.Kind), p.Enabled, p.Priority, p.Weight, p.MaxActiveStreams,
		string(enc[0]), string(enc[1]), sealed, string(enc[2]), p.MonthlyBudget, string(enc[3])}, nil
}

// providerAudit is the audit snapshot of a provider: its JSON, which never holds
// credentials, and whether credentials are set.
func providerAudit(p switchboard.Provider) (json.RawMessage, error) {
	return providerSnapshot(p, p.CredentialsSet())
}

func providerSnapshot(p switchboard.Provider, credentialsSet bool) (json.RawMessage, error) {
	b, err := json.Marshal(struct {
		switchboard.Provider
		CredentialsSet bool `json:"credentialsSet"`
	}{p, credentialsSet})
	if err != nil {
		return nil, fmt.Errorf("encode audit snapshot: %w", err)
	}
	return b, nil
}

// cloneProvider copies p deeply enough that changing the copy's slices and
// maps leaves p alone.
func cloneProvider(p switchboard.Provider) switchboard.Provider {
	p.Regions = slices.Clone(p.Regions)
	p.Config.ExpectStatus = slices.Clone(p.Config.ExpectStatus)
	p.Pricing.PerThousandMinutes = maps.Clone(p.Pricing.PerThousandMinutes)
	p.Credentials.Headers = maps.Clone(p.Credentials.Headers)
	return p
}

// providerSetLock is the lock key of changes to the set of providers (create,
// delete, reorder): a reorder must see every provider, and none may appear or
// go while it runs.
const providerSetLock = "switchboard.providers"

func notFound(name string) error {
	return switchboard.Errorf(switchboard.ENotFound, "provider %s not found", name)
}

// ListProviders returns every provider with its health, ordered by priority
// then name, with credentials opened: callers probe with them, and the HTTP
// layer never serialises them.
func (s *Store) ListProviders(ctx context.Context) ([]switchboard.ProviderRecord, error) {
	rows, err := s.r.QueryContext(ctx, selectRecord+` ORDER BY p.priority, p.name`)
	if err != nil {
		return nil, wrap("list providers", err)
	}
	defer rows.Close()
	recs := []switchboard.ProviderRecord{}
	for rows.Next() {
		rec, err := s.scanRecord(rows)
		if err != nil {
			return nil, wrap("list providers", err)
		}
		recs = append(recs, rec)
	}
	return recs, wrap("list providers", rows.Err())
}

// GetProvider returns one provider with its health and opened credentials.
// Errors: ENotFound.
func (s *Store) GetProvider(ctx context.Context, name string) (switchboard.ProviderRecord, error) {
	// Prepared: every client-reported failure reads its provider.
	rec, err := s.scanRecord(s.readRow(ctx, qProviderByName, name))
	if errors.Is(err, sql.ErrNoRows) {
		err = notFound(name)
	}
	return rec, wrap("get provider", err)
}

const qProviderByName = selectRecord + ` WHERE p.name = ?`

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// getProvider reads a provider; lock is appended to the query (s.d.lockRow, or
// "" outside a write).
func (s *Store) getProvider(ctx context.Context, q queryer, name, lock string) (switchboard.ProviderRecord, error) {
	if lock != "" {
		lock += " OF p" // the provider row only; its health is not changed
	}
	rec, err := s.scanRecord(q.QueryRowContext(ctx, s.q(qProviderByName+lock), name))
	if errors.Is(err, sql.ErrNoRows) {
		return rec, notFound(name)
	}
	return rec, err
}

// CreateProvider stores a new provider, which must be valid, with credentials
// sealed and an initial health record: UNKNOWN when enabled, DISABLED when not.
// CreatedAt and UpdatedAt are set from the store's clock. The audit entry
// (default action provider.create) gets the provider as After.
// Errors: EInvalid, EConflict when the name is taken.
func (s *Store) CreateProvider(ctx context.Context, p switchboard.Provider, audit switchboard.AuditEntry) error {
	if err := p.Validate(); err != nil {
		return err
	}
	now := s.clock.Now().UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	vals, err := s.providerValues(p)
	if err != nil {
		return wrap("create provider", err)
	}
	if audit.After, err = providerAudit(p); err != nil {
		return wrap("create provider", err)
	}
	audit.Before = nil
	status := switchboard.StatusUnknown
	if !p.Enabled {
		status = switchboard.StatusDisabled
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, providerSetLock); err != nil {
			return err
		}
		args := append(append([]any{p.Name}, vals...), dbTime(now), dbTime(now))
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO providers (name, display_name, kind, enabled,
			priority, weight, max_active_streams, regions, config, credentials, pricing, monthly_budget,
			health_check, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args...)
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "provider %s already exists", p.Name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO provider_health (provider, status, status_since)
			VALUES (?, ?, ?)`), p.Name, string(status), dbTime(now)); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "provider.create", p.Name)
	})
	s.registryChanged()
	return wrap("create provider", err)
}

// UpdateProvider reads the provider, calls fn on a copy of it and stores what fn
// returns, in one transaction with its audit entry (default action
// provider.update, Before and After filled by the store). fn must not change
// the name; CreatedAt is kept and UpdatedAt set from the store's clock. When fn
// returns an error nothing changes and that error is returned as is. fn may be
// called while the writer is held, so it must be quick and must not use the
// store. Errors: ENotFound, EInvalid (the result of fn is invalid).
func (s *Store) UpdateProvider(ctx context.Context, name string, fn func(switchboard.Provider) (switchboard.Provider, error), audit switchboard.AuditEntry) (before, after switchboard.Provider, err error) {
	var fnErr error
	err = s.write(ctx, func(tx *sql.Tx) error {
		rec, err := s.getProvider(ctx, tx, name, s.d.lockRow)
		if err != nil {
			return err
		}
		before = rec.Provider
		a, err := fn(cloneProvider(before))
		if err != nil {
			fnErr = err
			return err
		}
		if a.Name != name {
			return switchboard.Invalid("name", "is immutable")
		}
		if err := a.Validate(); err != nil {
			return err
		}
		a.CreatedAt, a.UpdatedAt = before.CreatedAt, s.clock.Now().UTC()
		vals, err := s.providerValues(a)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE providers SET display_name = ?, kind = ?, enabled = ?,
			priority = ?, weight = ?, max_active_streams = ?, regions = ?, config = ?, credentials = ?,
			pricing = ?, monthly_budget = ?, health_check = ?, updated_at = ? WHERE name = ?`),
			append(vals, dbTime(a.UpdatedAt), name)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("updated %d rows, want 1", n)
		}
		if audit.Before, err = providerAudit(before); err != nil {
			return err
		}
		if audit.After, err = providerAudit(a); err != nil {
			return err
		}
		after = a
		return s.insertAudit(ctx, tx, audit, "provider.update", name)
	})
	s.registryChanged()
	if fnErr != nil {
		return switchboard.Provider{}, switchboard.Provider{}, fnErr
	}
	if err != nil {
		return switchboard.Provider{}, switchboard.Provider{}, wrap("update provider", err)
	}
	return before, after, nil
}

// ReorderProviders gives order[i] priority i+1, in one transaction with one
// audit entry (default action provider.reorder, target "providers", Before and
// After the lists of names in the old and new order). order must name every
// provider exactly once; otherwise it returns EInvalid for field "order" saying
// which name is unknown, repeated or missing, and changes nothing.
func (s *Store) ReorderProviders(ctx context.Context, order []string, audit switchboard.AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, providerSetLock); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT name, priority FROM providers ORDER BY priority, name`+s.d.lockRow)
		if err != nil {
			return err
		}
		var old []string
		priority := map[string]int{}
		for rows.Next() {
			var n string
			var p int
			if err := rows.Scan(&n, &p); err != nil {
				rows.Close()
				return err
			}
			old = append(old, n)
			priority[n] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		seen := make(map[string]bool, len(order))
		for _, n := range order {
			if _, ok := priority[n]; !ok {
				return switchboard.Invalid("order", "unknown provider %q", n)
			}
			if seen[n] {
				return switchboard.Invalid("order", "provider %q is listed more than once", n)
			}
			seen[n] = true
		}
		for _, n := range old {
			if !seen[n] {
				return switchboard.Invalid("order", "provider %q is missing: the order must list every provider", n)
			}
		}
		now := dbTime(s.clock.Now())
		for i, n := range order {
			if priority[n] == i+1 {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE providers SET priority = ?, updated_at = ? WHERE name = ?`), i+1, now, n); err != nil {
				return err
			}
		}
		if old == nil {
			old = []string{}
		}
		if audit.Before, err = json.Marshal(old); err != nil {
			return err
		}
		if audit.After, err = json.Marshal(slices.Clone(order)); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "provider.reorder", "providers")
	})
	s.registryChanged()
	return wrap("reorder providers", err)
}

// DeleteProvider deletes a provider with its health and history, in one
// transaction with its audit entry (default action provider.delete, Before the
// provider). Errors: ENotFound.
func (s *Store) DeleteProvider(ctx context.Context, name string, audit switchboard.AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Read the row without opening credentials: a provider whose
		// credentials no longer open (the key changed) must still be deletable.
		if err := s.lockKey(ctx, tx, providerSetLock); err != nil {
			return err
		}
		var row providerRow
		err := tx.QueryRowContext(ctx, s.q(`SELECT `+providerColumns+` FROM providers p WHERE p.name = ?`+s.d.forDelete), name).
			Scan(row.dest()...)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(name)
		}
		if err != nil {
			return err
		}
		p, err := row.provider()
		if err != nil {
			return err
		}
		snap, err := providerSnapshot(p, row.sealed != nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM providers WHERE name = ?`), name); err != nil {
			return err
		}
		audit.Before, audit.After = snap, nil
		return s.insertAudit(ctx, tx, audit, "provider.delete", name)
	})
	s.registryChanged()
	return wrap("delete provider", err)
}

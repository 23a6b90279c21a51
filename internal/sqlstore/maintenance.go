package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Maintenance page sizes.
const (
	defaultMaintenanceLimit = 100
	maxMaintenanceLimit     = 1000
)

const maintenanceColumns = `id, provider, start_at, end_at, ended_at, reason, drain, drain_rate,
	created_at, created_by, announced, progress`

func scanMaintenance(sc scanner) (switchboard.MaintenanceWindow, error) {
	var (
		w                   switchboard.MaintenanceWindow
		start, end, created int64
		ended               sql.NullInt64
		progress            sql.NullString
	)
	if err := sc.Scan(&w.ID, &w.Provider, &start, &end, &ended, &w.Reason, &w.Drain, &w.DrainRate,
		&created, &w.CreatedBy, &w.Announced, &progress); err != nil {
		return w, err
	}
	w.Start, w.End, w.CreatedAt, w.EndedAt = goTime(start), goTime(end), goTime(created), goTimePtr(ended)
	if progress.Valid {
		var d switchboard.MaintenanceDrain
		if err := json.Unmarshal([]byte(progress.String), &d); err != nil {
			return w, err
		}
		w.DrainProgress = &d
	}
	return w, nil
}

// maintenanceAudit is the window as audit entries record it.
func maintenanceAudit(w switchboard.MaintenanceWindow) json.RawMessage {
	w.DrainProgress = nil
	b, _ := json.Marshal(w)
	return b
}

// CreateMaintenance stores a new window with its audit entry (default
// action maintenance.create, target "maintenance:<id>").
func (s *Store) CreateMaintenance(ctx context.Context, w switchboard.MaintenanceWindow, audit switchboard.AuditEntry) error {
	if !switchboard.ValidMaintenanceID(w.ID) {
		return switchboard.Invalid("id", "must match %s", switchboard.MaintenanceIDPattern)
	}
	if !w.End.After(w.Start) {
		return switchboard.Invalid("end", "must be after start")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM providers WHERE name = ?`+s.d.lockRow), w.Provider).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Invalid("provider", "no provider named %s", w.Provider)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO maintenance_windows (`+maintenanceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
			w.ID, w.Provider, dbTime(w.Start), dbTime(w.End), dbTimePtr(w.EndedAt), w.Reason, w.Drain, w.DrainRate,
			dbTime(s.nowOr(w.CreatedAt)), w.CreatedBy, "")
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "maintenance window %s already exists", w.ID)
		}
		if err != nil {
			return err
		}
		audit.After = maintenanceAudit(w)
		return s.insertAudit(ctx, tx, audit, "maintenance.create", "maintenance:"+w.ID)
	})
	return wrap("create maintenance", err)
}

// GetMaintenance returns one window.
func (s *Store) GetMaintenance(ctx context.Context, id string) (switchboard.MaintenanceWindow, error) {
	w, err := scanMaintenance(s.r.QueryRowContext(ctx, s.q(`SELECT `+maintenanceColumns+` FROM maintenance_windows WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return w, switchboard.Errorf(switchboard.ENotFound, "no maintenance window %s", id)
	}
	return w, wrap("get maintenance", err)
}

// ListMaintenance returns the windows f selects.
func (s *Store) ListMaintenance(ctx context.Context, f switchboard.MaintenanceFilter) ([]switchboard.MaintenanceWindow, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultMaintenanceLimit
	}
	limit = min(limit, maxMaintenanceLimit)
	query := `SELECT ` + maintenanceColumns + ` FROM maintenance_windows WHERE 1 = 1`
	var args []any
	if f.Provider != "" {
		query += ` AND provider = ?`
		args = append(args, f.Provider)
	}
	// The window ends at ended_at when it was ended early.
	const ends = `(CASE WHEN ended_at IS NOT NULL AND ended_at < end_at THEN ended_at ELSE end_at END)`
	at := dbTime(f.At)
	order := ` ORDER BY start_at DESC, id DESC`
	switch f.State {
	case "":
	case switchboard.MaintenanceActive:
		query += ` AND start_at <= ? AND ` + ends + ` > ?`
		args = append(args, at, at)
		order = ` ORDER BY start_at, id`
	case switchboard.MaintenanceUpcoming:
		query += ` AND start_at > ? AND ` + ends + ` > ?`
		args = append(args, at, at)
		order = ` ORDER BY start_at, id`
	case switchboard.MaintenancePast:
		query += ` AND ` + ends + ` <= ?`
		args = append(args, at)
	default:
		return nil, switchboard.Invalid("state", "must be active, upcoming or past")
	}
	query += order + ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, wrap("list maintenance", err)
	}
	defer rows.Close()
	out := []switchboard.MaintenanceWindow{}
	for rows.Next() {
		w, err := scanMaintenance(rows)
		if err != nil {
			return nil, wrap("list maintenance", err)
		}
		out = append(out, w)
	}
	return out, wrap("list maintenance", rows.Err())
}

// EndMaintenance ends a window early, with its audit entry (default action
// maintenance.end, target "maintenance:<id>").
func (s *Store) EndMaintenance(ctx context.Context, id string, at time.Time, audit switchboard.AuditEntry) (switchboard.MaintenanceWindow, error) {
	var w switchboard.MaintenanceWindow
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		w, err = scanMaintenance(tx.QueryRowContext(ctx, s.q(`SELECT `+maintenanceColumns+` FROM maintenance_windows WHERE id = ?`+s.d.lockRow), id))
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENotFound, "no maintenance window %s", id)
		}
		if err != nil {
			return err
		}
		if !at.Before(w.Ends()) {
			return switchboard.Errorf(switchboard.EConflict, "maintenance window %s is over", id)
		}
		before := maintenanceAudit(w)
		at := at.UTC()
		w.EndedAt = &at
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE maintenance_windows SET ended_at = ? WHERE id = ?`), dbTime(at), id); err != nil {
			return err
		}
		audit.Before, audit.After = before, maintenanceAudit(w)
		return s.insertAudit(ctx, tx, audit, "maintenance.end", "maintenance:"+id)
	})
	return w, wrap("end maintenance", err)
}

// AnnounceMaintenance moves the window's announced state forward to state.
func (s *Store) AnnounceMaintenance(ctx context.Context, id, state string) (bool, error) {
	var cond string
	switch state {
	case "started":
		cond = `announced = ''`
	case "ended":
		cond = `announced <> 'ended'`
	default:
		return false, switchboard.Invalid("state", "must be started or ended")
	}
	query := `UPDATE maintenance_windows SET announced = ? WHERE id = ? AND ` + cond
	args := []any{state, id}
	res, err := s.w.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return false, wrap("announce maintenance", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("announce maintenance", err)
}

// SetMaintenanceDrain stores the progress of a window's drain.
func (s *Store) SetMaintenanceDrain(ctx context.Context, id string, d switchboard.MaintenanceDrain) error {
	b, err := json.Marshal(d)
	if err != nil {
		return wrap("set maintenance drain", err)
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE maintenance_windows SET progress = ? WHERE id = ?`), string(b), id)
	if err != nil {
		return wrap("set maintenance drain", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return switchboard.Errorf(switchboard.ENotFound, "no maintenance window %s", id)
	}
	return nil
}

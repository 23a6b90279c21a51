package httpapi

import (
	"net/http"
	"strconv"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/maintenance"
)

// maintenanceView is a window as the API shows it: with its state now and,
// for a window that drains, when the drain begins.
type maintenanceView struct {
	sb.MaintenanceWindow
	State      string     `json:"state"`
	DrainStart *time.Time `json:"drainStart,omitempty"`
}

func maintenanceViewOf(w sb.MaintenanceWindow, now time.Time) maintenanceView {
	v := maintenanceView{MaintenanceWindow: w, State: w.State(now)}
	if w.Drain {
		t := w.DrainStart()
		v.DrainStart = &t
	}
	return v
}

// maintenanceChanged makes this replica's routing see a change of the
// windows at once.
func (s *Server) maintenanceChanged(r *http.Request) {
	if s.maint == nil {
		return
	}
	if err := s.maint.Refresh(r.Context()); err != nil {
		s.maint.Changed() // read them again as soon as Run can
		s.logger.WarnContext(r.Context(), "read maintenance windows", "err", err.Error())
	}
}

// createMaintenance schedules a window: 201 with it; 400 naming the field of
// bad input, storing nothing.
func (s *Server) createMaintenance(w http.ResponseWriter, r *http.Request) {
	var in sb.MaintenanceInput
	if err := decode(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.clock.Now()
	win, err := in.Window(now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	actor := sb.ActorFrom(r.Context())
	win.CreatedBy = actor.Name
	audit := sb.AuditEntry{At: now, Actor: actor, Action: "maintenance.create", Target: "maintenance:" + win.ID}
	if err := s.store.CreateMaintenance(r.Context(), win, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.maintenanceChanged(r)
	s.logger.InfoContext(r.Context(), "maintenance scheduled", "id", win.ID, "provider", win.Provider,
		"start", win.Start.Format(time.RFC3339), "end", win.End.Format(time.RFC3339), "drain", win.Drain, "actor", actor.Name)
	s.publish(sb.EventMaintenanceScheduled, sb.RoleClient, maintenance.EventData(win))
	w.Header().Set("Location", "/api/maintenance/"+win.ID)
	writeJSON(w, http.StatusCreated, maintenanceViewOf(win, now))
}

// listMaintenance lists windows, filtered by state and provider.
func (s *Server) listMaintenance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := sb.MaintenanceFilter{State: q.Get("state"), Provider: q.Get("provider"), At: s.clock.Now()}
	switch f.State {
	case "", sb.MaintenanceActive, sb.MaintenanceUpcoming, sb.MaintenancePast:
	default:
		s.writeError(w, r, sb.Invalid("state", "must be active, upcoming or past"))
		return
	}
	if f.Provider != "" && !sb.ValidSlug(f.Provider) {
		s.writeError(w, r, sb.Invalid("provider", "is not a provider name"))
		return
	}
	limit, err := limitParam(q, 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = limit
	ws, err := s.store.ListMaintenance(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]maintenanceView, len(ws))
	for i, win := range ws {
		out[i] = maintenanceViewOf(win, f.At)
	}
	writeJSON(w, http.StatusOK, map[string]any{"windows": out})
}

// maintenanceID reads the {id} of the path; a malformed one is not found.
func (s *Server) maintenanceID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !sb.ValidMaintenanceID(id) {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "no maintenance window %s", strconv.Quote(sb.Truncate(id, 64))))
		return "", false
	}
	return id, true
}

func (s *Server) getMaintenance(w http.ResponseWriter, r *http.Request) {
	id, ok := s.maintenanceID(w, r)
	if !ok {
		return
	}
	win, err := s.store.GetMaintenance(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, maintenanceViewOf(win, s.clock.Now()))
}

// endMaintenance ends a window now (before it starts, this cancels it): 409
// when it is over.
func (s *Server) endMaintenance(w http.ResponseWriter, r *http.Request) {
	id, ok := s.maintenanceID(w, r)
	if !ok {
		return
	}
	now := s.clock.Now()
	actor := sb.ActorFrom(r.Context())
	audit := sb.AuditEntry{At: now, Actor: actor, Action: "maintenance.end", Target: "maintenance:" + id}
	win, err := s.store.EndMaintenance(r.Context(), id, now, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.maintenanceChanged(r)
	s.logger.InfoContext(r.Context(), "maintenance ended early", "id", id, "provider", win.Provider, "actor", actor.Name)
	if s.maint != nil {
		s.maint.Announce(r.Context(), win)
	} else {
		s.publish(sb.EventMaintenanceEnded, sb.RoleClient, maintenance.EventData(win))
	}
	writeJSON(w, http.StatusOK, maintenanceViewOf(win, now))
}

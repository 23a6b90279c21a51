package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboardhq/switchboard/internal/reports"
)

// reportFormat reads the format parameter, answering 400 when it is bad.
func (s *Server) reportFormat(w http.ResponseWriter, r *http.Request) (string, bool) {
	f, err := reports.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	return f, true
}

// writeReport answers a report as JSON, or as a CSV attachment named name.
func writeReport(w http.ResponseWriter, format, name string, rep any, rows func() [][]string) {
	if format != reports.FormatCSV {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_ = reports.WriteCSV(w, rows())
}

// reportPeriod reads from and to, answering 400 when they are bad.
func (s *Server) reportPeriod(w http.ResponseWriter, r *http.Request, q url.Values) (from, to time.Time, ok bool) {
	from, to, err := reports.ParsePeriod(q.Get("from"), q.Get("to"), s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return from, to, false
	}
	return from, to, true
}

// csvName is the file name of a report of kind over [from, to).
func csvName(kind, by string, from, to time.Time) string {
	const stamp = "20060102T150405Z"
	return kind + "-" + by + "-" + from.Format(stamp) + "-" + to.Format(stamp) + ".csv"
}

// slaReport is GET /api/reports/sla?month=YYYY-MM: per provider, its uptime,
// incidents, failovers and the degradations predicted.
func (s *Server) slaReport(w http.ResponseWriter, r *http.Request) {
	format, ok := s.reportFormat(w, r)
	if !ok {
		return
	}
	month := r.URL.Query().Get("month")
	if month == "" {
		month = s.clock.Now().UTC().Format("2006-01")
	}
	from, to, err := reports.ParseMonth(month, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, err := reports.BuildSLA(r.Context(), s.store, month, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, format, "sla-"+month+".csv", rep, rep.Rows)
}

// costReport is GET /api/reports/cost: minutes, streams and cost over a
// period, grouped, against the period before.
func (s *Server) costReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, ok := s.reportFormat(w, r)
	if !ok {
		return
	}
	by, err := reports.ParseGroupBy(q.Get("groupBy"), reports.ByProvider, reports.ByRegion, reports.ByQuality, reports.ByDay)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	from, to, ok := s.reportPeriod(w, r, q)
	if !ok {
		return
	}
	rep, err := reports.BuildCost(r.Context(), s.store, by, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, format, csvName("cost", by, from, to), rep, rep.Rows)
}

// qualityReport is GET /api/reports/quality: the quality score, its parts
// and the estimated MOS over a period, by provider or region.
func (s *Server) qualityReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, ok := s.reportFormat(w, r)
	if !ok {
		return
	}
	by, err := reports.ParseGroupBy(q.Get("groupBy"), reports.ByProvider, reports.ByRegion)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	from, to, ok := s.reportPeriod(w, r, q)
	if !ok {
		return
	}
	rep, err := reports.BuildQuality(r.Context(), s.store, by, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, format, csvName("quality", by, from, to), rep, rep.Rows)
}

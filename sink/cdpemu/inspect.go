package cdpemu

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Inspection paths: the emulator's own, for tests and demos, never used by the loader. They
// need no token and are not counted in Stats.
//
//	GET  /_emulator/profiles/{key}/{value}     one profile (404 if none); key an identity key
//	GET  /_emulator/profiles?offset=N&limit=M  {"total","offset","limit","profiles":[...]},
//	                                           creation order; limit defaults to 100, at most 10000
//	GET  /_emulator/stats                      Stats
//	POST /_emulator/snapshot                   writes DataFile (400 without one)
//	POST /_emulator/reset                      forgets every profile and count
const (
	defaultPageLimit = 100
	maxPageLimit     = 10000
)

type profilePage struct {
	Total    int              `json:"total"`
	Offset   int              `json:"offset"`
	Limit    int              `json:"limit"`
	Profiles []map[string]any `json:"profiles"`
}

func (s *Server) serveEmulator(w http.ResponseWriter, r *http.Request) int {
	var parts []string
	for _, p := range strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/_emulator"), "/")[1:] {
		u, err := url.PathUnescape(p)
		if err != nil {
			return s.writeError(w, invalid("bad path escape: "+err.Error()))
		}
		parts = append(parts, u)
	}
	route, method := "", http.MethodGet
	switch {
	case len(parts) == 1 && parts[0] == "profiles":
		route = "list"
	case len(parts) == 3 && parts[0] == "profiles":
		route = "one"
	case len(parts) == 1 && parts[0] == "stats":
		route = "stats"
	case len(parts) == 1 && parts[0] == "snapshot":
		route, method = "snapshot", http.MethodPost
	case len(parts) == 1 && parts[0] == "reset":
		route, method = "reset", http.MethodPost
	default:
		return s.writeError(w, &apiError{status: http.StatusNotFound, code: codeNotFound, message: "no such path: " + r.URL.Path})
	}
	if r.Method != method {
		return s.notAllowed(w, r, method)
	}
	switch route {
	case "list":
		return s.serveList(w, r)
	case "one":
		key, value := parts[1], parts[2]
		if !s.identity[key] {
			return s.writeError(w, invalid(key+" is not an identity key", detail{Field: key, Reason: "not an identity key"}))
		}
		p, ok := s.Profile(key, value)
		if !ok {
			return s.writeError(w, &apiError{status: http.StatusNotFound, code: codeNotFound, message: "no profile with " + key + " " + strconv.Quote(value)})
		}
		return s.writeValue(w, http.StatusOK, p)
	case "stats":
		return s.writeValue(w, http.StatusOK, s.Stats())
	case "snapshot":
		if err := s.Snapshot(); err != nil {
			if errors.Is(err, ErrNoDataFile) {
				return s.writeError(w, invalid("no data file configured"))
			}
			return s.writeError(w, &apiError{status: http.StatusInternalServerError, code: codeInternal, message: err.Error()})
		}
		return s.writeValue(w, http.StatusOK, map[string]any{"success": true, "dataFile": s.dataFile, "profiles": s.store.len()})
	default: // reset
		s.Reset()
		return s.writeValue(w, http.StatusOK, map[string]any{"success": true})
	}
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) int {
	q := r.URL.Query()
	offset, limit := 0, defaultPageLimit
	var ds []detail
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			ds = append(ds, detail{Field: "offset", Reason: "must be a whole number"})
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxPageLimit {
			ds = append(ds, detail{Field: "limit", Reason: "must be a whole number up to " + strconv.Itoa(maxPageLimit)})
		}
		limit = n
	}
	if len(ds) > 0 {
		return s.writeError(w, invalid("bad paging: "+ds[0].Field+" "+ds[0].Reason, ds...))
	}
	ps, total := s.store.page(offset, limit)
	return s.writeValue(w, http.StatusOK, profilePage{Total: total, Offset: offset, Limit: limit, Profiles: ps})
}

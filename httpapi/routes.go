package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/datapusher/datapusher"
)

// Route is one registered method and path. Path is the public path with
// {name} wildcards, and it matches only the whole path, never a prefix. Method is
// empty for a route that takes every method.
type Route struct {
	Method string
	Path   string
}

// route is a Route with its handler.
type route struct {
	Route
	handler http.Handler
}

// routes returns every route of the API. It is the one place where routes
// are added.
func (s *Server) routes() []route {
	return []route{
		{Route{"POST", "/api/users/register/"}, s.public(s.ipLimited(s.handleRegister))},
		{Route{"POST", "/api/token/"}, s.public(s.handleToken)},
		{Route{"POST", "/api/token/refresh/"}, s.public(s.ipLimited(s.handleRefreshToken))},
		{Route{"POST", "/api/users/logout/"}, s.authed(s.handleLogout)},
		{Route{"GET", "/api/users/me/"}, s.authed(s.handleMe)},
		{Route{"POST", "/api/users/accept-invite/"}, s.public(s.ipLimited(s.handleAcceptInvite))},

		{Route{"GET", "/api/roles/"}, s.authed(s.handleListRoles)},

		{Route{"POST", "/api/accounts/"}, s.authed(s.handleCreateAccount)},
		{Route{"GET", "/api/accounts/"}, s.authed(s.handleListAccounts)},
		{Route{"GET", "/api/accounts/{account_id}/"}, s.authed(s.handleGetAccount)},
		{Route{"PUT", "/api/accounts/{account_id}/"}, s.authed(s.handleUpdateAccount)},
		{Route{"PATCH", "/api/accounts/{account_id}/"}, s.authed(s.handleUpdateAccount)},
		{Route{"DELETE", "/api/accounts/{account_id}/"}, s.authed(s.handleDeleteAccount)},
		{Route{"POST", "/api/accounts/{account_id}/rotate-token/"}, s.authed(s.handleRotateAccountToken)},
		{Route{"GET", "/api/accounts/{account_id}/destinations/"}, s.authed(s.handleAccountDestinations)},
		{Route{"GET", "/api/accounts/{account_id}/stats/"}, s.authed(s.handleAccountStats)},

		{Route{"POST", "/api/destinations/"}, s.authed(s.handleCreateDestination)},
		{Route{"GET", "/api/destinations/"}, s.authed(s.handleListDestinations)},
		{Route{"GET", "/api/destinations/{id}/"}, s.authed(s.handleGetDestination)},
		{Route{"PUT", "/api/destinations/{id}/"}, s.authed(s.handleUpdateDestination)},
		{Route{"PATCH", "/api/destinations/{id}/"}, s.authed(s.handleUpdateDestination)},
		{Route{"DELETE", "/api/destinations/{id}/"}, s.authed(s.handleDeleteDestination)},
		{Route{"POST", "/api/destinations/{id}/rotate-secret/"}, s.authed(s.handleRotateSigningSecret)},
		{Route{"POST", "/api/destinations/{id}/recover/"}, s.authed(s.handleRecoverDestination)},

		{Route{"POST", "/api/account-members/"}, s.authed(s.handleCreateMember)},
		{Route{"GET", "/api/account-members/"}, s.authed(s.handleListMembers)},
		{Route{"GET", "/api/account-members/{id}/"}, s.authed(s.handleGetMember)},
		{Route{"PUT", "/api/account-members/{id}/"}, s.authed(s.handleUpdateMember)},
		{Route{"PATCH", "/api/account-members/{id}/"}, s.authed(s.handleUpdateMember)},
		{Route{"DELETE", "/api/account-members/{id}/"}, s.authed(s.handleDeleteMember)},

		{Route{"POST", "/api/logs/"}, s.authed(s.handleSendTestEvent)},
		{Route{"GET", "/api/logs/"}, s.authed(s.handleListLogs)},
		{Route{"GET", "/api/logs/{id}/"}, s.authed(s.handleGetLog)},
		{Route{"GET", "/api/logs/{id}/attempts/"}, s.authed(s.handleListAttempts)},
		{Route{"POST", "/api/logs/{id}/retry/"}, s.authed(s.handleRetryLog)},

		// Operational routes take no JWT. The metrics handler checks its
		// own bearer token.
		{Route{"GET", "/healthz"}, s.optional(s.cfg.HealthHandler)},
		{Route{"GET", "/readyz"}, s.optional(s.cfg.ReadyHandler)},
		{Route{"GET", "/metrics"}, s.optional(s.cfg.MetricsHandler)},
		{Route{"GET", "/api/schema/"}, s.optional(s.cfg.SchemaHandler)},
		{Route{"GET", "/swagger/"}, s.optional(s.cfg.DocsHandler)},
		{Route{"GET", "/swagger/{path...}"}, s.optional(s.cfg.DocsHandler)},
		{Route{"", "/riverui/{path...}"}, s.superusersOnly(s.cfg.RiverUIHandler)},

		// Senders authenticate with the account's app secret token, which
		// handleIncomingData checks. It also handles every other method.
		{Route{"POST", "/server/incoming_data"}, http.HandlerFunc(s.handleIncomingData)},
		{Route{"POST", "/server/incoming_data/"}, http.HandlerFunc(s.handleIncomingData)},
		{Route{"", "/server/incoming_data"}, http.HandlerFunc(s.handleIncomingData)},
		{Route{"", "/server/incoming_data/"}, http.HandlerFunc(s.handleIncomingData)},
	}
}

// Routes returns every registered route, for tests that walk them all.
func (s *Server) Routes() []Route {
	var out []Route
	for _, rt := range s.routes() {
		out = append(out, rt.Route)
	}
	return out
}

// newMux registers every route and records its pattern in s.patterns. A
// path gets a DRF-style 405 for methods it does not take, and unknown paths
// get a DRF-style 404.
func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	var paths []string
	s.patterns = map[string]bool{}
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		s.patterns[pattern] = true
	}
	for _, rt := range s.routes() {
		handler := rt.handler
		if rt.Method == http.MethodGet && strings.HasPrefix(rt.Path, "/api/") && rt.Path != "/api/schema/" {
			// Management API reads carry an ETag; the schema sets its own.
			handler = withETag(handler)
		}
		handle(muxPattern(rt.Method, rt.Path), handler)
		if _, seen := methods[rt.Path]; !seen {
			paths = append(paths, rt.Path)
		}
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	for _, path := range paths {
		if slices.Contains(methods[path], "") || coveredByRest(path, paths) {
			continue
		}
		handle(muxPattern("", path), s.methodNotAllowed(methods[path]))
	}
	handle("/", s.public(func(http.ResponseWriter, *http.Request) error { return errNotFound }))
	return mux
}

// coveredByRest reports whether another of paths is path followed by one
// {name...} wildcard, such as "/swagger/{path...}" for "/swagger/". The
// wildcard route also matches path itself, so its 405 handler serves both.
// ServeMux would reject a method-less "/swagger/{$}" beside
// "GET /swagger/{path...}", because neither pattern is more specific than
// the other.
func coveredByRest(path string, paths []string) bool {
	if !strings.HasSuffix(path, "/") {
		return false
	}
	for _, other := range paths {
		rest, ok := strings.CutPrefix(other, path)
		if ok && strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "...}") && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// muxPattern returns the ServeMux pattern of a route. A path ending in "/"
// gets {$}, because ServeMux would otherwise match it as a prefix.
func muxPattern(method, path string) string {
	if strings.HasSuffix(path, "/") {
		path += "{$}"
	}
	if method == "" {
		return path
	}
	return method + " " + path
}

// methodNotAllowed writes a 405 response whose Allow header lists methods.
// OPTIONS gets 200 with the same header.
func (s *Server) methodNotAllowed(methods []string) http.Handler {
	allow := slices.Clone(methods)
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead)
	}
	allow = append(allow, http.MethodOptions)
	header := strings.Join(allow, ", ")
	return s.public(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", header)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return nil
		}
		return datapusher.Errorf(codeMethodNotAllowed, "Method %q not allowed.", r.Method)
	})
}

// public returns a handler that runs h without authentication and writes
// the error it returns.
func (s *Server) public(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authed returns a handler that authenticates the request's bearer access
// token, counts the request against the user's API rate limit, runs h with
// the user and writes the error it returns.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, user *datapusher.User) error) http.Handler {
	return s.public(func(w http.ResponseWriter, r *http.Request) error {
		user, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if err := s.checkAPILimit(w, r, user); err != nil {
			return err
		}
		return h(w, r, user)
	})
}

// optional returns h, or a handler that responds with 404 when h is nil,
// for routes whose handler another package provides.
func (s *Server) optional(h http.Handler) http.Handler {
	if h == nil {
		return s.public(func(http.ResponseWriter, *http.Request) error { return errNotFound })
	}
	return h
}

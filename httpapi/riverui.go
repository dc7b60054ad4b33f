package httpapi

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/datapusher/datapusher"
)

// basicAuthCacheTTL is how long a verified Basic credential of the queue
// dashboard is trusted without running bcrypt again. The dashboard's page
// makes many requests, each with the same header.
const basicAuthCacheTTL = time.Minute

// superusersOnly serves h to superusers only. Browsers open the queue
// dashboard without a bearer token, so it also takes HTTP Basic credentials
// (a superuser's email and password), limited like sign-ins. Anonymous
// requests get 401 with a Basic challenge; other users get 403.
func (s *Server) superusersOnly(h http.Handler) http.Handler {
	if h == nil {
		return s.optional(nil)
	}
	return s.public(func(w http.ResponseWriter, r *http.Request) error {
		user, err := s.dashboardUser(w, r)
		if err != nil {
			if datapusher.ErrorCode(err) == datapusher.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Basic realm="Data Pusher queue", charset="UTF-8"`)
			}
			return err
		}
		if !user.IsSuperuser {
			return errForbidden
		}
		h.ServeHTTP(w, r)
		return nil
	})
}

// dashboardUser authenticates a bearer token or Basic credentials.
func (s *Server) dashboardUser(w http.ResponseWriter, r *http.Request) (*datapusher.User, error) {
	email, password, ok := r.BasicAuth()
	if !ok {
		return s.authenticate(r)
	}
	key := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	if userID, ok := s.basicAuth.get(key, s.now()); ok {
		return s.store.UserByID(r.Context(), userID)
	}

	limitKeys := loginLimitKeys(r, email)
	if err := s.checkLoginLimit(w, r, limitKeys); err != nil {
		return nil, err
	}
	user, err := s.store.UserByEmail(r.Context(), email)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	if !s.checkPassword(user, password) {
		s.recordLoginFailure(r, limitKeys)
		return nil, errBadCredentials
	}
	s.basicAuth.put(key, user.ID, s.now().Add(basicAuthCacheTTL))
	return user, nil
}

// credentialCache remembers verified Basic credentials by the SHA-256 of
// their header, never the password itself.
type credentialCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedCredential
}

type cachedCredential struct {
	userID  string
	expires time.Time
}

func (c *credentialCache) get(key [32]byte, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, ok := c.entries[key]
	if !ok || !now.Before(entry.expires) {
		delete(c.entries, key)
		return "", false
	}
	return entry.userID, true
}

func (c *credentialCache) put(key [32]byte, userID string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[32]byte]cachedCredential{}
	}
	// Expired entries are dropped as new ones arrive, so the map stays as
	// small as the number of credentials used within one TTL.
	for k, entry := range c.entries {
		if !expires.Add(-basicAuthCacheTTL).Before(entry.expires) {
			delete(c.entries, k)
		}
	}
	c.entries[key] = cachedCredential{userID: userID, expires: expires}
}

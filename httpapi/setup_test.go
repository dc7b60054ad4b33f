package httpapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/apidocs/apidocstest"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// testPassword is the password of every persona.
const testPassword = "correct horse battery"

var testSecretKey = []byte("httpapi-test-secret-key-0123456789")

// TestMain runs the tests and then scans every response body they received
// for app secret tokens outside the two responses allowed to carry one.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := responses.secretTokenLeaks(); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "app secret token in unexpected responses:")
			for _, leak := range leaks {
				fmt.Fprintln(os.Stderr, "  "+leak)
			}
			code = 1
		}
		if leaks := scan.leaks(); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "secrets that the servers logged:", strings.Join(leaks, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// responseLog records every response body of the test suite.
type responseLog struct {
	mu      sync.Mutex
	entries []loggedResponse
}

type loggedResponse struct {
	method, path string
	body         []byte
}

var responses = &responseLog{}

func (l *responseLog) add(method, path string, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, loggedResponse{method, path, bytes.Clone(body)})
}

var tokenRoutes = regexp.MustCompile(`^/api/accounts/(|[^/]+/rotate-token/)$`)

// secretTokenLeaks returns a line for each response, other than account
// creation and token rotation, that contains an app secret token field or
// the value of a token those responses returned.
func (l *responseLog) secretTokenLeaks() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var tokens []string
	for _, e := range l.entries {
		if e.method == http.MethodPost && tokenRoutes.MatchString(e.path) {
			var body struct {
				Token string `json:"app_secret_token"`
			}
			if json.Unmarshal(e.body, &body) == nil && body.Token != "" {
				tokens = append(tokens, body.Token)
			}
		}
	}
	var leaks []string
	for _, e := range l.entries {
		if e.method == http.MethodPost && tokenRoutes.MatchString(e.path) {
			continue
		}
		if bytes.Contains(e.body, []byte(`"app_secret_token"`)) {
			leaks = append(leaks, e.method+" "+e.path+": app_secret_token field")
		}
		for _, token := range tokens {
			if bytes.Contains(e.body, []byte(token)) {
				leaks = append(leaks, e.method+" "+e.path+": token value")
			}
		}
	}
	return leaks
}

// persona is a user the tests act as, with a valid access token.
type persona struct {
	name   string
	user   *datapusher.User
	access string
}

// fixture is a server on a fresh database with one account and a persona
// for each kind of user: the account's Admin, a Normal user of it, an
// outsider who is a member of another account only, and a superuser.
type fixture struct {
	t        testing.TB
	store    *sqlstore.Store
	server   *Server
	events   *fakeEvents
	logs     *syncBuffer
	account  *datapusher.Account
	enqueued *recorder
	changes  *recorder

	admin, normal, outsider, super *persona
	anonymous                      *persona
}

// forEachDialect runs fn as a parallel subtest on a fresh fixture of every
// database dialect.
func forEachDialect(t *testing.T, fn func(t *testing.T, fx *fixture)) {
	t.Helper()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, testdb.Open(t, dialect), Config{}))
		})
	}
}

// newFixture creates the server and personas. Zero fields of cfg get
// test values: Enqueue records the ids of the logs it is given in
// fx.enqueued, OnAccountChange records account ids in fx.changes, and each
// operational route responds with 200 and a stub body that names it.
func newFixture(t testing.TB, store *sqlstore.Store, cfg Config) *fixture {
	t.Helper()
	if cfg.SecretKey == nil {
		cfg.SecretKey = testSecretKey
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.MinCost
	}
	fx := &fixture{t: t, store: store, events: &fakeEvents{}, logs: &syncBuffer{},
		enqueued: &recorder{}, changes: &recorder{}}
	scan.addLogs(fx.logs)
	if cfg.Enqueue == nil {
		cfg.Enqueue = func(_ context.Context, _ *sql.Tx, logs []*datapusher.DeliveryLog) error {
			for _, l := range logs {
				fx.enqueued.add(l.ID)
			}
			return nil
		}
	}
	if cfg.OnAccountChange == nil {
		cfg.OnAccountChange = func(_ context.Context, accountID string) { fx.changes.add(accountID) }
	}
	for name, h := range map[string]*http.Handler{
		"health": &cfg.HealthHandler, "ready": &cfg.ReadyHandler, "metrics": &cfg.MetricsHandler,
		"schema": &cfg.SchemaHandler, "docs": &cfg.DocsHandler, "riverui": &cfg.RiverUIHandler,
	} {
		if *h == nil {
			*h = stubHandler(name)
		}
	}
	logger := slog.New(slog.NewJSONHandler(fx.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fx.server = NewServer(cfg, store, fx.events, logger)

	fx.admin = fx.newPersona("admin", "admin@example.com")
	fx.normal = fx.newPersona("normal", "normal@example.com")
	fx.outsider = fx.newPersona("outsider", "outsider@example.com")
	fx.super = fx.newSuperuser("superuser", "root@example.com")
	fx.anonymous = &persona{name: "anonymous"}

	fx.account = fx.createAccount(fx.admin, "Acme")
	fx.addMember(fx.account, fx.normal, datapusher.RoleIDNormalUser)
	fx.createAccount(fx.outsider, "Elsewhere")

	t.Cleanup(fx.checkLogs)
	return fx
}

func (fx *fixture) newPersona(name, email string) *persona {
	fx.t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	require.NoError(fx.t, err)
	user := &datapusher.User{Email: email, PasswordHash: string(hash)}
	require.NoError(fx.t, fx.store.CreateUser(context.Background(), user))
	return fx.personaFor(name, user)
}

func (fx *fixture) newSuperuser(name, email string) *persona {
	fx.t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	require.NoError(fx.t, err)
	user, err := fx.store.SetSuperuser(context.Background(), email, string(hash))
	require.NoError(fx.t, err)
	return fx.personaFor(name, user)
}

func (fx *fixture) personaFor(name string, user *datapusher.User) *persona {
	fx.t.Helper()
	access, _, err := fx.server.issueToken(user.ID, tokenTypeAccess)
	require.NoError(fx.t, err)
	return &persona{name: name, user: user, access: access}
}

// createAccount creates an account through the store, with owner as Admin.
func (fx *fixture) createAccount(owner *persona, name string) *datapusher.Account {
	fx.t.Helper()
	a := &datapusher.Account{AccountName: name}
	require.NoError(fx.t, fx.store.CreateAccount(context.Background(), a, hashToken(randomToken()), owner.user.ID))
	return a
}

func (fx *fixture) addMember(a *datapusher.Account, p *persona, roleID int) *datapusher.Member {
	fx.t.Helper()
	m := &datapusher.Member{AccountID: a.AccountID, UserID: p.user.ID, RoleID: roleID}
	_, err := fx.store.CreateMember(context.Background(), m, *a.CreatedBy, nil)
	require.NoError(fx.t, err)
	return m
}

// createDestination creates a destination through the store.
func (fx *fixture) createDestination(a *datapusher.Account) *datapusher.Destination {
	fx.t.Helper()
	d := &datapusher.Destination{
		AccountID: a.AccountID, URL: "https://hooks.example.test/in", HTTPMethod: "POST",
		Headers: map[string]string{"X-Team": "blue"}, SigningSecret: newSigningSecret(), Enabled: true,
	}
	require.NoError(fx.t, fx.store.CreateDestination(context.Background(), d, *a.CreatedBy))
	return d
}

// createEvent stores an event for every destination and returns its logs.
func (fx *fixture) createEvent(a *datapusher.Account, eventID string, destinations ...*datapusher.Destination) []*datapusher.DeliveryLog {
	fx.t.Helper()
	item := &sqlstore.NewEvent{
		Event:        &datapusher.Event{AccountID: a.AccountID, EventID: eventID, Body: json.RawMessage(`{"n": 1}`)},
		Destinations: destinations,
	}
	require.NoError(fx.t, fx.store.InsertEvents(context.Background(), []*sqlstore.NewEvent{item}, nil))
	return item.Logs
}

// response is a recorded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r *response) object(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

// list decodes the body as a JSON array of objects.
func (r *response) list(t *testing.T) []map[string]any {
	t.Helper()
	var v []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

// results decodes the results of a paginated list body.
func (r *response) results(t *testing.T) []map[string]any {
	t.Helper()
	var v struct {
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v.Results
}

// do sends a request through the real router as the persona. A string or
// []byte body is sent as is, and any other body is encoded as JSON.
func (fx *fixture) do(method, path string, as *persona, body any) *response {
	fx.t.Helper()
	return doRequest(fx.t, fx.server.Handler(), method, path, as, body)
}

func doRequest(t testing.TB, h http.Handler, method, path string, as *persona, body any) *response {
	t.Helper()
	req, reqBody := newRequest(t, method, path, as, body)
	return serveRequest(t, h, req, reqBody)
}

// newRequest returns a server request as the persona, and its body. A
// string or []byte body is sent as is, and any other body is encoded as
// JSON.
func newRequest(t testing.TB, method, path string, as *persona, body any) (*http.Request, []byte) {
	t.Helper()
	var reqBody []byte
	switch b := body.(type) {
	case nil:
	case string:
		reqBody = []byte(b)
	case []byte:
		reqBody = b
	default:
		encoded, err := json.Marshal(b)
		require.NoError(t, err)
		reqBody = encoded
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(reqBody))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if as != nil && as.access != "" {
		req.Header.Set("Authorization", "Bearer "+as.access)
	}
	return req, reqBody
}

// serveRequest serves req, whose body is reqBody, records the response body
// for the secret token scan and checks the request and response against the
// OpenAPI document.
func serveRequest(t testing.TB, h http.Handler, req *http.Request, reqBody []byte) *response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	responses.add(req.Method, req.URL.Path, rec.Body.Bytes())
	scan.addBody(reqBody)
	scan.addBody(rec.Body.Bytes())
	result := rec.Result()
	if documented(req.URL.Path) {
		apiDocs(t).Check(t, req, reqBody, result, rec.Body.Bytes())
	}
	return &response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

var (
	apiDocsOnce      sync.Once
	apiDocsValidator *apidocstest.Validator
)

// apiDocs returns the validator of every response that the tests receive.
// The first caller's t loads the OpenAPI document and reports it if it
// does not load, and every later test fails without loading it again.
func apiDocs(t testing.TB) *apidocstest.Validator {
	t.Helper()
	apiDocsOnce.Do(func() { apiDocsValidator = apidocstest.NewValidator(t) })
	if apiDocsValidator == nil {
		t.Fatal("openapi.yaml did not load; the first test that sent a request shows why")
	}
	return apiDocsValidator
}

// documented reports whether responses for path are checked against the
// OpenAPI document. The operational routes and the queue dashboard are
// not, because the fixture serves them with stubHandler, whose
// {"stub": name} body is not the real handlers' body. The packages of the
// real handlers test those, and TestOperationalRoutesMatchOpenAPI checks
// the real health and metrics handlers against the document.
func documented(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/api/schema/":
		return false
	}
	return !strings.HasPrefix(path, "/swagger/") && !strings.HasPrefix(path, "/riverui/")
}

// checkLogs fails the test when the server logged a password or a token.
func (fx *fixture) checkLogs() {
	logs := fx.logs.String()
	require.NotContains(fx.t, logs, testPassword)
	for _, p := range []*persona{fx.admin, fx.normal, fx.outsider, fx.super} {
		require.NotContains(fx.t, logs, p.access, "access token of %s logged", p.name)
	}
}

// stubHandler responds to every request with 200 and {"stub": name}.
func stubHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"stub": name})
	})
}

// recorder collects strings from concurrent callers.
type recorder struct {
	mu     sync.Mutex
	values []string
}

func (r *recorder) add(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values = append(r.values, v)
}

// all returns every value recorded so far.
func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.values)
}

// reset clears the recorded values.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values = nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeEvents replaces the event submitter, which another package
// implements. It records each submission and rejects every app token.
type fakeEvents struct {
	mu        sync.Mutex
	submitted []fakeSubmission
	duplicate bool
	err       error
}

type fakeSubmission struct {
	accountID, eventID, requestID string
	body                          []byte
}

func (e *fakeEvents) SubmitWithToken(context.Context, string, string, []byte, string) (*datapusher.Submission, error) {
	return nil, datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")
}

func (e *fakeEvents) SubmitForAccount(_ context.Context, accountID, eventID string, body []byte, requestID string) (*datapusher.Submission, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return nil, e.err
	}
	e.submitted = append(e.submitted, fakeSubmission{accountID, eventID, requestID, bytes.Clone(body)})
	if eventID == "" {
		eventID = fmt.Sprintf("generated-%d", len(e.submitted))
	}
	return &datapusher.Submission{AccountID: accountID, EventID: eventID, Duplicate: e.duplicate}, nil
}

func (e *fakeEvents) last() fakeSubmission {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.submitted[len(e.submitted)-1]
}

func TestSecretTokenLeakScan(t *testing.T) {
	t.Parallel()
	log := &responseLog{}
	log.add("POST", "/api/accounts/", []byte(`{"account_id": "a", "app_secret_token": "tok-123"}`))
	log.add("POST", "/api/accounts/a/rotate-token/", []byte(`{"app_secret_token": "tok-456"}`))
	log.add("GET", "/api/accounts/a/", []byte(`{"account_id": "a"}`))
	require.Empty(t, log.secretTokenLeaks())

	log.add("GET", "/api/accounts/", []byte(`{"results": [{"note": "tok-456"}]}`))
	log.add("PATCH", "/api/accounts/a/", []byte(`{"app_secret_token": ""}`))
	require.Equal(t, []string{
		"GET /api/accounts/: token value",
		"PATCH /api/accounts/a/: app_secret_token field",
	}, log.secretTokenLeaks())
}

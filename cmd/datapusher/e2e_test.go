package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
)

// binaryPath is the datapusher binary that TestMain builds once.
var binaryPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "datapusher-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		os.Exit(1)
	}
	binaryPath = filepath.Join(dir, "datapusher")
	build := exec.Command("go", "build", "-race", "-o", binaryPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build datapusher:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running datapusher binary.
type process struct {
	t       *testing.T
	cmd     *exec.Cmd
	baseURL string
	output  *syncBuffer
	done    chan error
}

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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startProcess starts "datapusher serve" with env on a free port and waits
// until it responds.
func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	return startCommand(t, "serve", env)
}

// startCommand starts a server subcommand of datapusher with env on a port
// that the process picks itself, and waits until it responds. A port picked
// by the test and freed for the process could be taken by another test's
// process in between, and the test would then talk to that one.
func startCommand(t *testing.T, command string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(binaryPath, command)
	cmd.Env = append(os.Environ(), "DATAPUSHER_ADDR=127.0.0.1:0", "DATAPUSHER_LOG_FORMAT=json")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{t: t, cmd: cmd, output: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("datapusher output:\n%s", p.output.String())
		}
	})

	require.Eventually(t, func() bool {
		addr := listeningAddr(p.output.String())
		if addr == "" {
			return false
		}
		p.baseURL = "http://" + addr
		resp, err := http.Get(p.baseURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond, "datapusher did not start:\n%s", p.output.String())
	return p
}

// listeningAddr returns the address of the process's "listening" log line,
// or "" before it has logged one.
func listeningAddr(output string) string {
	for line := range strings.SplitSeq(output, "\n") {
		var entry struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening" {
			return entry.Addr
		}
	}
	return ""
}

// createSuperuser runs "datapusher createsuperuser" with env.
func createSuperuser(t *testing.T, env map[string]string, email, password string) {
	t.Helper()
	cmd := exec.Command(binaryPath, "createsuperuser", "-email", email, "-password", password)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "createsuperuser: %s", out)
	require.Contains(t, string(out), "superuser "+email+" ready")
}

// call sends a JSON request and decodes a JSON response into out.
func (p *process) call(method, path, token string, headers map[string]string, body any, out any) int {
	p.t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(p.t, err)
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.baseURL+path, reader)
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(p.t, json.Unmarshal(data, out), "decode %s %s answer %q", method, path, data)
	}
	return resp.StatusCode
}

// signIn registers a user and returns an access token.
func (p *process) signIn(email string) string {
	p.t.Helper()
	status := p.call("POST", "/api/users/register/", "", nil,
		map[string]string{"email": email, "password": "correct horse battery"}, nil)
	require.Equal(p.t, http.StatusCreated, status)
	var tokens struct{ Access, Refresh string }
	status = p.call("POST", "/api/token/", "", nil,
		map[string]string{"email": email, "password": "correct horse battery"}, &tokens)
	require.Equal(p.t, http.StatusOK, status)
	require.NotEmpty(p.t, tokens.Access)
	return tokens.Access
}

type accountBody struct {
	AccountID      string `json:"account_id"`
	AppSecretToken string `json:"app_secret_token"`
}

func (p *process) createAccount(access, name string) accountBody {
	p.t.Helper()
	var account accountBody
	status := p.call("POST", "/api/accounts/", access, nil, map[string]string{"account_name": name}, &account)
	require.Equal(p.t, http.StatusCreated, status)
	require.NotEmpty(p.t, account.AppSecretToken)
	return account
}

func (p *process) createDestination(access, accountID, method, url string) string {
	p.t.Helper()
	var destination struct{ ID string }
	status := p.call("POST", "/api/destinations/", access, nil, map[string]any{
		"account_id": accountID, "url": url, "http_method": method, "headers": map[string]string{"X-Source": "e2e"},
	}, &destination)
	require.Equal(p.t, http.StatusCreated, status)
	return destination.ID
}

type logBody struct {
	ID                 string `json:"id"`
	EventID            string `json:"event_id"`
	DestinationID      string `json:"destination_id"`
	Status             string `json:"status"`
	ResponseStatusCode *int   `json:"response_status_code"`
	Error              string `json:"error"`
}

// recorder is a real receiver that keeps what arrives.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
}

func newRecorder(t *testing.T, status int) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, r)
		rec.bodies = append(rec.bodies, body)
		rec.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func TestWalkthrough(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			env := map[string]string{
				"DATAPUSHER_DATA_DIR":                     dataDir,
				"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
				"DATAPUSHER_RETRY_SCHEDULE":               "",
			}
			if dialect == "postgres" {
				env["DATABASE_URL"] = testdb.DSN(t, dialect)
			}
			createSuperuser(t, env, "root@example.com", "superuser password")
			p := startProcess(t, env)

			getReceiver, postReceiver := newRecorder(t, http.StatusOK), newRecorder(t, http.StatusOK)
			failing := newRecorder(t, http.StatusInternalServerError)
			access := p.signIn("walker@example.com")
			account := p.createAccount(access, "Walkthrough Inc")
			getID := p.createDestination(access, account.AccountID, "get", getReceiver.URL+"/hook")
			postID := p.createDestination(access, account.AccountID, "POST", postReceiver.URL+"/hook")
			failingID := p.createDestination(access, account.AccountID, "POST", failing.URL+"/hook")

			body := map[string]any{"order_id": 42, "customer": map[string]string{"name": "Ada"}}
			var accepted struct {
				Success bool   `json:"success"`
				Message string `json:"message"`
				EventID string `json:"event_id"`
			}
			status := p.call("POST", "/server/incoming_data", "", map[string]string{
				"CL-X-TOKEN": account.AppSecretToken, "CL-X-EVENT-ID": "order-42",
			}, body, &accepted)
			require.Equal(t, http.StatusAccepted, status)
			require.True(t, accepted.Success)
			require.Equal(t, "Data Received", accepted.Message)
			require.Equal(t, "order-42", accepted.EventID)

			logs := map[string]logBody{}
			require.Eventually(t, func() bool {
				var page struct{ Results []logBody }
				status := p.call("GET", "/api/logs/?event_id=order-42", access, nil, nil, &page)
				require.Equal(t, http.StatusOK, status)
				for _, l := range page.Results {
					if l.Status != "success" && l.Status != "failed" {
						return false
					}
					logs[l.DestinationID] = l
				}
				return len(page.Results) == 3
			}, 30*time.Second, 100*time.Millisecond)

			require.Equal(t, "success", logs[getID].Status)
			require.Equal(t, "success", logs[postID].Status)
			require.Equal(t, "failed", logs[failingID].Status)
			require.Equal(t, 500, *logs[failingID].ResponseStatusCode)
			require.NotEmpty(t, logs[failingID].Error)

			require.Equal(t, 1, getReceiver.count())
			getReceiver.mu.Lock()
			require.Equal(t, "42", getReceiver.requests[0].URL.Query().Get("order_id"))
			require.Equal(t, `{"name":"Ada"}`, getReceiver.requests[0].URL.Query().Get("customer"))
			require.Equal(t, "e2e", getReceiver.requests[0].Header.Get("X-Source"))
			getReceiver.mu.Unlock()
			postReceiver.mu.Lock()
			require.JSONEq(t, `{"order_id": 42, "customer": {"name": "Ada"}}`, string(postReceiver.bodies[0]))
			require.Equal(t, "order-42", postReceiver.requests[0].Header.Get("CL-X-EVENT-ID"))
			postReceiver.mu.Unlock()

			// The queue dashboard is open to the superuser only.
			for path, want := range map[string]string{"/riverui/": "<html", "/riverui/api/states": `"completed"`} {
				req, err := http.NewRequest("GET", p.baseURL+path, nil)
				require.NoError(t, err)
				req.SetBasicAuth("root@example.com", "superuser password")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, path)
				require.Contains(t, string(body), want, path)
			}
			require.Equal(t, http.StatusForbidden, p.call("GET", "/riverui/api/states", access, nil, nil, nil))

			// The process stops cleanly on SIGTERM.
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
			select {
			case err := <-p.done:
				require.NoError(t, err, "exit status after SIGTERM")
			case <-time.After(60 * time.Second):
				t.Fatal("datapusher did not stop after SIGTERM")
			}
			require.Contains(t, p.output.String(), `"msg":"stopped"`)
			require.NotContains(t, p.output.String(), account.AppSecretToken, "the token never reaches the logs")
			require.NotContains(t, p.output.String(), access, "the access token never reaches the logs")
		})
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoCommand", nil, "missing command"},
		{"UnknownCommand", []string{"launch"}, `unknown command "launch"`},
		{"BadWorkers", []string{"serve", "-workers", "many"}, "invalid value"},
		{"BadSchedule", []string{"migrate", "-retry-schedule", "5x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, strings.NewReader(""), io.Discard, &stderr)
			if tc.want == "" {
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error()+stderr.String(), tc.want)
		})
	}
}

// TestCrashLosesNothing kills the process with SIGKILL while it delivers a
// stream of events, restarts it on the same database, and checks at real
// receivers that every event accepted with 202 arrived at each destination.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"DATAPUSHER_DATA_DIR":                     t.TempDir(),
				"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
				"DATAPUSHER_RETRY_SCHEDULE":               "100ms,100ms,100ms,100ms,100ms",
				"DATAPUSHER_DELIVERY_TIMEOUT":             "1s",
				"DATAPUSHER_RATE_LIMIT_PER_SECOND":        "1000",
			}
			if dialect == "postgres" {
				env["DATABASE_URL"] = testdb.DSN(t, dialect)
			}

			// Receivers respond slowly, so deliveries are in flight when
			// the process dies.
			var mu sync.Mutex
			arrivals := map[string]map[string][]string{} // destination -> event id -> webhook ids
			receiver := func(name string) *httptest.Server {
				arrivals[name] = map[string][]string{}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(100 * time.Millisecond)
					mu.Lock()
					eventID := r.Header.Get("CL-X-EVENT-ID")
					arrivals[name][eventID] = append(arrivals[name][eventID], r.Header.Get("webhook-id"))
					mu.Unlock()
				}))
				t.Cleanup(srv.Close)
				return srv
			}
			first, second := receiver("first"), receiver("second")

			p := startProcess(t, env)
			access := p.signIn("crash@example.com")
			account := p.createAccount(access, "Crash Test")
			p.createDestination(access, account.AccountID, "POST", first.URL)
			p.createDestination(access, account.AccountID, "PUT", second.URL)

			// Send events from several clients, then kill the process
			// while deliveries are still queued and in flight.
			accepted := make([]string, 200)
			var senders sync.WaitGroup
			for client := range 8 {
				senders.Add(1)
				go func() {
					defer senders.Done()
					for i := client; i < len(accepted); i += 8 {
						id := fmt.Sprintf("evt-%03d", i)
						status := p.call("POST", "/server/incoming_data", "", map[string]string{
							"CL-X-TOKEN": account.AppSecretToken, "CL-X-EVENT-ID": id,
						}, map[string]int{"n": i}, nil)
						if status == http.StatusAccepted {
							accepted[i] = id
						}
					}
				}()
			}
			senders.Wait()
			for i, id := range accepted {
				require.NotEmpty(t, id, "event %d was not accepted", i)
			}
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
			<-p.done
			mu.Lock()
			deliveredBeforeKill := len(arrivals["first"]) + len(arrivals["second"])
			mu.Unlock()
			t.Logf("%d of %d deliveries arrived before the kill", deliveredBeforeKill, 2*len(accepted))

			startProcess(t, env)
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, byEvent := range arrivals {
					for _, id := range accepted {
						if len(byEvent[id]) == 0 {
							return false
						}
					}
				}
				return true
			}, 3*time.Minute, 100*time.Millisecond, "not every accepted event arrived after restart")

			mu.Lock()
			defer mu.Unlock()
			for name, byEvent := range arrivals {
				for id, webhookIDs := range byEvent {
					for _, webhookID := range webhookIDs {
						require.Equal(t, webhookIDs[0], webhookID, "%s: duplicates of %s carry one webhook id", name, id)
					}
				}
			}
		})
	}
}

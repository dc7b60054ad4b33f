package httpapi

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
)

// FuzzDestinationBody decodes arbitrary bodies as destination create and
// update requests. Decoding must never panic, every rejection must be a
// validation error (400), and an accepted destination must hold only
// headers that net/http sends unchanged.
func FuzzDestinationBody(f *testing.F) {
	for _, seed := range []string{
		`{"account_id": "x", "url": "https://a.test/", "http_method": "post", "headers": {}}`,
		`{"url": "http://a.test", "http_method": "GET", "headers": {"X-A": "1", "x-b": "two words"}}`,
		`{"headers": {"Host": "evil"}}`,
		`{"headers": {"X-A": "a\r\nX-B: b"}}`,
		`{"headers": {"X-A": "\u0000"}}`,
		`{"headers": {"bad name": "v"}}`,
		`{"headers": {"": ""}}`,
		`{"headers": [1, 2]}`,
		`{"headers": {"X": 1}}`,
		`{"headers": null, "enabled": "true"}`,
		`{"url": "http://[::1]:80/", "http_method": "pAtCh", "headers": {"X-\u00e9": "v"}}`,
		`{"disabled_reason": 5, "enabled": null}`,
		`[]`, `null`, `"text"`, `{`, ``, `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{cfg: Config{}.withDefaults()}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, full := range []bool{true, false} {
			f, err := parseForm(body)
			if err != nil {
				requireInvalid(t, err)
				return
			}
			d := &datapusher.Destination{AccountID: "a", Enabled: true, Headers: map[string]string{}}
			s.applyDestinationForm(f, d, full, full)
			if err := f.err(); err != nil {
				requireInvalid(t, err)
				continue
			}
			checkHeadersRoundTrip(t, d.Headers)
		}
	})
}

// FuzzHeaders checks validateHeaders against net/http: a header it accepts
// survives being written in a request and read back.
func FuzzHeaders(f *testing.F) {
	for _, seed := range [][2]string{
		{"X-Team", "blue"}, {"Authorization", "Bearer x"}, {"host", "a"}, {"X-A", "a\r\nB: c"},
		{"X A", "v"}, {"X-Tab", "a\tb"}, {"X-Del", "a\x7f"}, {"X-Utf8", "caf\u00e9"}, {"", ""},
		{"Webhook-Id", "1"}, {"X-Lead", "  padded  "},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		headers := map[string]string{name: value}
		if len(validateHeaders(headers)) > 0 {
			return
		}
		if reservedHeaders[strings.ToLower(name)] {
			t.Fatalf("reserved header %q accepted", name)
		}
		checkHeadersRoundTrip(t, headers)
	})
}

// checkHeadersRoundTrip writes headers in a request and fails unless
// reading it back yields the same names and values.
func checkHeadersRoundTrip(t *testing.T, headers map[string]string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://receiver.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range headers {
		req.Header[name] = []string{value}
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatalf("write request with accepted headers %q: %v", headers, err)
	}
	read, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("read back request with accepted headers %q: %v", headers, err)
	}
	for name, value := range headers {
		got := read.Header.Values(name)
		want := strings.Trim(value, " \t")
		if len(got) != 1 || got[0] != want {
			t.Fatalf("header %q: sent %q, received %q", name, value, got)
		}
	}
}

func requireInvalid(t *testing.T, err error) {
	t.Helper()
	if code := datapusher.ErrorCode(err); code != datapusher.EINVALID {
		t.Fatalf("error code %q, want %q: %v", code, datapusher.EINVALID, err)
	}
}

// FuzzListQuery sends arbitrary query strings to every list endpoint and
// to the account statistics on both databases. No query may cause a 500.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "page=2", "page=0", "page=-1", "page=99999999999999999999", "page_size=500", "page_size=501",
		"account_id=abc", "account_id=00000000-0000-0000-0000-000000000000", "user_id=%00", "role_id=1",
		"role_id=x", "destination_id={}", "status=success", "status=SUCCESS", "event_id=%27%3B--",
		"received_timestamp__gte=2026-01-01T00:00:00Z", "processed_timestamp__lte=2026-01-01T00:00:00%2B02:00",
		"created_at__gte=9999-12-31T23:59:59Z", "ordering=-received_timestamp", "ordering=--url",
		"ordering=account_name", "search=%25_%5C", "http_method=get", "cursor=eyJ0IjoiMjAyNiIsImkiOiJ4In0",
		"cursor=eyJpIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIn0", "page=1&page=2", "a=%zz",
		"from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z", "from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59Z",
		"to=0000-01-01T00:00:00Z", "to=0001-01-01T12:00:00Z", "to=9999-12-31T23:00:00-02:00", "from=2026-01-01T00:00:00-23:59&to=2026-01-01T00:00:00%2B23:59",
	} {
		f.Add(seed)
	}
	var fixtures []*fixture
	for _, dialect := range testdb.Dialects {
		fixtures = append(fixtures, newFixture(f, testdb.Open(f, dialect), Config{}))
	}
	paths := []string{"/api/logs/", "/api/accounts/", "/api/destinations/", "/api/account-members/",
		"/api/accounts/ACCOUNT/stats/"}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		for _, fx := range fixtures {
			for _, path := range paths {
				path = strings.Replace(path, "ACCOUNT", fx.account.AccountID, 1)
				for _, p := range []*persona{fx.normal, fx.super} {
					req := httptest.NewRequest("GET", path, nil)
					req.URL.RawQuery = rawQuery
					req.Header.Set("Authorization", "Bearer "+p.access)
					resp := serveRequest(t, fx.server.Handler(), req, nil)
					if resp.status >= 500 {
						t.Fatalf("GET %s?%s as %s on %s: %d %s", path, rawQuery, p.name,
							fx.store.Dialect(), resp.status, resp.body)
					}
					if resp.status != http.StatusOK && resp.status != http.StatusBadRequest &&
						resp.status != http.StatusNotFound {
						t.Fatalf("GET %s?%s: unexpected status %d", path, rawQuery, resp.status)
					}
				}
			}
		}
	})
}

// FuzzLogFilter parses arbitrary query strings as log filters: no panic,
// and every rejection is a validation error.
func FuzzLogFilter(f *testing.F) {
	f.Add("status=x&cursor=%%&page_size=1e3")
	f.Add("ordering=-processed_timestamp&received_timestamp__lte=2026-02-30T00:00:00Z")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest("GET", "/api/logs/", nil)
		req.URL.RawQuery = rawQuery
		filter, err := parseLogFilter(newQuery(req))
		if err != nil {
			requireInvalid(t, err)
			return
		}
		if filter.Limit < 1 || filter.Limit > maxPageSize {
			t.Fatalf("page size %d accepted", filter.Limit)
		}
	})
}

// FuzzWriteBodies sends arbitrary bodies to the endpoints that write
// accounts, destinations and members, and to destination recovery, on both
// databases. "ACCOUNT" and
// "DESTINATION" in a body are replaced by real ids. No body may cause a 500.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"account_name": "A\u0000", "email": "a@b.test", "rate_limit_per_second": 99999999999999999999}`,
		`{"account_name": "\ud800", "website": "http://[fe80::1%25en0]/"}`,
		`{"account_id": "ACCOUNT", "url": "https://a.test/", "http_method": "post", "headers": {"X": "\u00ff"}}`,
		`{"account_id": "ACCOUNT", "url": "https://a.test/", "http_method": "GET", "headers": {}, "disabled_reason": "\u0000"}`,
		`{"account_id": "ACCOUNT", "email": "x\u0000@y.test", "role_id": 2}`,
		`{"account_id": "ACCOUNT", "user_id": "DESTINATION", "role_id": 1}`,
		`{"account_id": "ACCOUNT", "role_id": -9223372036854775808, "email": "n@n.test"}`,
		`{"grace_period_seconds": 1e400}`, `{"account_id": 5}`, `{}`, `[]`, `{"a":`,
		`{"log_retention_days": 99999999999999999999}`, `{"log_retention_days": 36500, "rate_limit_per_second": null}`,
		`{"since": "0000-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999999Z"}`,
		`{"since": "2026-01-01T00:00:00+23:59", "until": null}`,
	} {
		f.Add(seed)
	}
	var fixtures []*fixture
	var destinations []*datapusher.Destination
	for _, dialect := range testdb.Dialects {
		fx := newFixture(f, testdb.Open(f, dialect), Config{})
		fixtures = append(fixtures, fx)
		destinations = append(destinations, fx.createDestination(fx.account))
	}
	f.Fuzz(func(t *testing.T, body string) {
		for i, fx := range fixtures {
			d := destinations[i]
			filled := strings.NewReplacer("ACCOUNT", fx.account.AccountID, "DESTINATION", d.ID).Replace(body)
			for _, target := range [][2]string{
				{"POST", "/api/accounts/"},
				{"PATCH", "/api/accounts/" + fx.account.AccountID + "/"},
				{"POST", "/api/destinations/"},
				{"PATCH", "/api/destinations/" + d.ID + "/"},
				{"POST", "/api/account-members/"},
				{"POST", "/api/users/register/"},
				{"POST", "/api/destinations/" + d.ID + "/recover/"},
			} {
				req := httptest.NewRequest(target[0], target[1], strings.NewReader(filled))
				req.Header.Set("Authorization", "Bearer "+fx.admin.access)
				resp := serveRequest(t, fx.server.Handler(), req, []byte(filled))
				if resp.status >= 500 {
					t.Fatalf("%s %s on %s with %q: %d %s", target[0], target[1], fx.store.Dialect(), filled,
						resp.status, resp.body)
				}
			}
		}
	})
}

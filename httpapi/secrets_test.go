package httpapi

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
)

// secretScan collects every secret the test suite sends or receives, and
// every log buffer the servers write to, so that TestMain can check that no
// secret was ever logged.
type secretScan struct {
	mu      sync.Mutex
	secrets map[string]bool
	logs    []*syncBuffer
}

var scan = &secretScan{secrets: map[string]bool{}}

// secretFields are the JSON fields whose string values are secrets: request
// passwords, and tokens and signing secrets in responses.
var secretFields = map[string]bool{
	"password": true, "access": true, "refresh": true, "token": true,
	"app_secret_token": true, "invitation_token": true, "signing_secret": true,
}

func (s *secretScan) addLogs(buf *syncBuffer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, buf)
}

// addBody records the secrets of a JSON request or response body, including
// destination header values, which may carry credentials.
func (s *secretScan) addBody(body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.walk(v, "")
}

func (s *secretScan) walk(v any, field string) {
	switch value := v.(type) {
	case map[string]any:
		for k, child := range value {
			if k == "headers" {
				if headers, ok := child.(map[string]any); ok {
					for _, h := range headers {
						s.walk(h, "header")
					}
					continue
				}
			}
			s.walk(child, k)
		}
	case []any:
		for _, child := range value {
			s.walk(child, field)
		}
	case string:
		// Short values could match by accident, so they are left out.
		if (secretFields[field] || field == "header") && len(value) >= 8 {
			s.secrets[value] = true
		}
	}
}

// leaks returns each secret that appears in a log buffer, sorted.
func (s *secretScan) leaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for _, buf := range s.logs {
		text := buf.String()
		for secret := range s.secrets {
			if strings.Contains(text, secret) {
				found = append(found, secret[:4]+"…")
			}
		}
	}
	sort.Strings(found)
	return found
}

func TestSecretScanFindsLoggedSecret(t *testing.T) {
	t.Parallel()
	s := &secretScan{secrets: map[string]bool{}}
	buf := &syncBuffer{}
	s.addLogs(buf)
	s.addBody([]byte(`{"password": "hunter2-hunter2", "headers": {"Authorization": "Bearer abcdefgh"}}`))
	s.addBody([]byte(`{"access": "eyJ.short"}`))
	if leaks := s.leaks(); len(leaks) != 0 {
		t.Fatalf("nothing was logged yet, got %v", leaks)
	}
	_, _ = buf.Write([]byte(`{"msg":"oops","value":"Bearer abcdefgh"}`))
	if leaks := s.leaks(); len(leaks) != 1 {
		t.Fatalf("want the logged header value, got %v", leaks)
	}
}

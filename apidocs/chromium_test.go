package apidocs

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's chromium package, which CI installs.
const chromiumPath = "/usr/bin/chromium"

// chromiumFlags keep headless Chromium from contacting any host but the
// test server. Virtual time lets the page finish loading its scripts and
// the document before the DOM is dumped.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--window-size=1280,2000", "--virtual-time-budget=5000",
	// Console messages, such as Content-Security-Policy violations, go to
	// stderr at this log level.
	"--enable-logging=stderr", "--v=0",
}

func TestSwaggerUIRendersInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found; install it with apt-get install chromium", chromiumPath)
	}
	server := httptest.NewServer(Handler())
	defer server.Close()

	page, log := renderInChromium(t, server.URL+SwaggerUIPath)
	operations := regexp.MustCompile(`class="opblock opblock-(get|post|put|patch|delete)`).FindAllString(page, -1)
	assert.Len(t, operations, len(publicAPI), "one opblock per operation")
	for _, want := range []string{`data-path="/server/incoming_data"`, `data-path="/api/accounts/{account_id}/"`} {
		assert.True(t, strings.Contains(page, want), "the page has no %s", want)
	}
	assert.False(t, strings.Contains(page, "Failed to load API definition"),
		"Swagger UI could not load the document")
	assert.False(t, strings.Contains(log, "violates the following Content Security Policy"),
		"the page tried to load something from another host, or inline")
	if t.Failed() {
		t.Logf("rendered DOM, first 4000 bytes:\n%.4000s\nchromium log:\n%s", page, log)
	}
}

func TestSwaggerUIShowsOperationParameters(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found; install it with apt-get install chromium", chromiumPath)
	}
	server := httptest.NewServer(Handler())
	defer server.Close()

	// The fragment is a Swagger UI deep link, which opens the operation.
	page, log := renderInChromium(t, server.URL+SwaggerUIPath+"#/Accounts/getAccount")
	params := regexp.MustCompile(`<tr data-param-name="([^"]*)" data-param-in="([^"]*)"`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, p := range params {
		got = append(got, p[2]+" "+p[1])
	}
	assert.Equal(t, []string{"path account_id", "header X-Request-ID", "header If-None-Match"}, got)
	if t.Failed() {
		t.Logf("rendered DOM, first 4000 bytes:\n%.4000s\nchromium log:\n%s", page, log)
	}
}

// renderInChromium loads url in headless Chromium and returns the rendered
// DOM and Chromium's log.
func renderInChromium(t *testing.T, url string) (dom, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+t.TempDir(), "--dump-dom", url)
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium failed, log:\n%s", stderr.String())
	return stdout.String(), stderr.String()
}

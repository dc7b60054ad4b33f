package sender

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/payloads"
)

// maxPayloadFiles limits how many sample payloads one test run sends.
const maxPayloadFiles = 12

// samplePayloadFiles returns up to maxPayloadFiles JSON files from dir,
// spread evenly over the sorted list so that several event types are used.
func samplePayloadFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files, "no json files in %s", dir)
	sort.Strings(files)

	step := max(1, len(files)/maxPayloadFiles)
	var sample []string
	for i := 0; i < len(files) && len(sample) < maxPayloadFiles; i += step {
		sample = append(sample, files[i])
	}
	return sample
}

func TestSendGitHubPayloads(t *testing.T) {
	t.Parallel()
	dir := payloads.DirOrSkip(t)
	files := samplePayloadFiles(t, dir)
	server, rec := newServer(t, nil)
	sender := newTestSender(Options{})

	for i, file := range files {
		body, err := os.ReadFile(file)
		require.NoError(t, err)

		result := sender.Send(t.Context(), postRequest(server.URL+"/github", string(body)))

		require.NoError(t, result.Err, "file %s", file)
		got := rec.all()[i]
		require.Equal(t, body, got.Body, "file %s should arrive byte for byte", file)
		require.Equal(t, referenceSignature(t, testSecret, "msg_1", 1700000000, body),
			got.Header.Get("webhook-signature"), "file %s", file)
	}
}

func TestSendGitHubPayloadsAsQuery(t *testing.T) {
	t.Parallel()
	dir := payloads.DirOrSkip(t)
	files := samplePayloadFiles(t, dir)
	server, rec := newServer(t, nil)
	sender := newTestSender(Options{})

	for i, file := range files {
		body, err := os.ReadFile(file)
		require.NoError(t, err)
		var object map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &object), "file %s", file)
		request := postRequest(server.URL+"/github", string(body))
		request.Method = http.MethodGet

		result := sender.Send(t.Context(), request)

		require.NoError(t, result.Err, "file %s", file)
		values, err := url.ParseQuery(rec.all()[i].RawQuery)
		require.NoError(t, err, "file %s", file)
		wantKeys := slices.Sorted(maps.Keys(object))
		gotKeys := slices.Sorted(maps.Keys(values))
		require.Equal(t, wantKeys, gotKeys, "file %s", file)
	}
}

// Package payloads loads real webhook payloads (GitHub's published examples)
// for tests and benchmarks. They live outside the repository, in
// ../shared/payloads/github beside its root, or in DATAPUSHER_PAYLOADS_DIR.
package payloads

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Dir returns the folder of the payloads, or an error when it is missing.
func Dir() (string, error) {
	if dir := os.Getenv("DATAPUSHER_PAYLOADS_DIR"); dir != "" {
		return dir, nil
	}
	// Walk up from the working folder (a package folder under go test) to
	// the folder that holds shared/ beside the repository.
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "..", "shared", "payloads", "github")
		if info, err := os.Stat(candidate); err == nil && info.IsDir() {
			return filepath.Clean(candidate), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("payloads folder not found: set DATAPUSHER_PAYLOADS_DIR")
		}
		dir = parent
	}
}

// Load returns up to n payloads (all when n <= 0), in path order.
func Load(n int) ([][]byte, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("no payloads in " + dir)
	}
	sort.Strings(paths)
	if n > 0 && len(paths) > n {
		paths = paths[:n]
	}
	payloads := make([][]byte, 0, len(paths))
	for _, path := range paths {
		body, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		payloads = append(payloads, body)
	}
	return payloads, nil
}

// DirOrSkip returns Dir for a test. When the folder is missing it skips the
// test, except under CI (the CI variable set), where the folder must exist
// and its absence fails the test.
func DirOrSkip(t testing.TB) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%v (the real payload tests run when it exists)", err)
		}
		t.Fatal(err)
	}
	return dir
}

// LoadOrSkip is Load for a test, skipping or failing like DirOrSkip.
func LoadOrSkip(t testing.TB, n int) [][]byte {
	t.Helper()
	DirOrSkip(t)
	bodies, err := Load(n)
	if err != nil {
		t.Fatal(err)
	}
	return bodies
}

package ingest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/ingest"
)

func TestValidBody(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		`{}`:                     true,
		` {"a": [1, {"b": 2}]} `: true,
		"{\"k\": \"caf\u00e9\"}": true,
		``:                       false,
		`   `:                    false,
		`[]`:                     false,
		`"text"`:                 false,
		`42`:                     false,
		`null`:                   false,
		`{"a": 1`:                false,
		`{"a": 1}{"b": 2}`:       false,
		`{"a": 1} x`:             false,
		"{\"a\": \"\xff\"}":      false,
	}
	for body, want := range cases {
		require.Equal(t, want, ingest.ValidBody([]byte(body)), "body %q", body)
	}
}

func TestValidEventID(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"evt-1":                  true,
		"order 42/paid":          true,
		strings.Repeat("a", 255): true,
		strings.Repeat("a", 256): false,
		"":                       false,
		"tab\there":              false,
		"caf\u00e9":              false,
		"new\nline":              false,
		"nul\x00":                false,
		"del\x7f":                false,
	}
	for id, want := range cases {
		require.Equal(t, want, ingest.ValidEventID(id), "event id %q", id)
	}
}

func FuzzValidBody(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":1}`, `[1]`, "\xff", `{"a":"\u0000"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = ingest.ValidBody(body)
	})
}

func FuzzValidEventID(f *testing.F) {
	for _, seed := range []string{"evt", "", "\x00", strings.Repeat("x", 300)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ingest.ValidEventID(id) {
			require.LessOrEqual(t, len(id), ingest.MaxEventIDLength)
		}
	})
}

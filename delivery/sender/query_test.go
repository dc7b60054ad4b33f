package sender

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQueryFromBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want url.Values
	}{
		{"empty body", "", url.Values{}},
		{"whitespace body", " \n", url.Values{}},
		{"empty object", "{}", url.Values{}},
		{"string", `{"s":"a b&c=d"}`, url.Values{"s": {"a b&c=d"}}},
		{"escaped string", `{"s":"line\nnext \u00e9 \"q\""}`, url.Values{"s": {"line\nnext é \"q\""}}},
		{"empty string", `{"s":""}`, url.Values{"s": {""}}},
		{"large integer", `{"n":123456789012345678901234567890}`, url.Values{"n": {"123456789012345678901234567890"}}},
		{"float keeps text", `{"f":1.50,"e":1e+21,"neg":-0.0}`, url.Values{"f": {"1.50"}, "e": {"1e+21"}, "neg": {"-0.0"}}},
		{"literals", `{"t":true,"f":false,"z":null}`, url.Values{"t": {"true"}, "f": {"false"}, "z": {"null"}}},
		{"nested object compacted", "{\"o\": { \"b\" : [1, 2.50],\n \"a\": {}}}", url.Values{"o": {`{"b":[1,2.50],"a":{}}`}}},
		{"array", `{"a":[ "x", null ]}`, url.Values{"a": {`["x",null]`}}},
		{"duplicate key keeps last", `{"k":1,"k":2}`, url.Values{"k": {"2"}}},
		{"surrounding whitespace", " {\"k\":1} \n", url.Values{"k": {"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := queryFromBody([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestQueryFromBodyInvalid(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`[1,2]`, `"text"`, `42`, `null`, `{`, `{"a":1}{"b":2}`, `{"a":1} x`, `{"a":}`} {
		_, err := queryFromBody([]byte(body))
		require.Error(t, err, "body %q", body)
	}
}

func TestJoinQuery(t *testing.T) {
	t.Parallel()
	params := url.Values{"b": {"2"}, "a": {"1 1"}}

	require.Equal(t, "a=1+1&b=2", joinQuery("", params))
	require.Equal(t, "x=%7E&a=1+1&b=2", joinQuery("x=%7E", params), "destination query keeps its text")
	require.Equal(t, "x=1", joinQuery("x=1", url.Values{}))
	require.Equal(t, "a=0&a=1+1&b=2", joinQuery("a=0", params))
}

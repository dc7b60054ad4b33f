package sender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// queryFromBody turns the top-level keys of a JSON object into query
// parameters. A string value is used as is. Numbers, booleans and null keep
// their JSON text, and objects and arrays become their compact JSON text.
// Each value is decoded as json.RawMessage, so a large number keeps its exact
// digits instead of passing through float64. An empty body yields no
// parameters, and any other non-object body is an error.
func queryFromBody(body []byte) (url.Values, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return url.Values{}, nil
	}

	decoder := json.NewDecoder(bytes.NewReader(body))
	var object map[string]json.RawMessage
	if err := decoder.Decode(&object); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	if object == nil {
		return nil, errors.New("body is not a json object")
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, errors.New("body has data after the json object")
	}

	params := make(url.Values, len(object))
	for key, raw := range object {
		value, err := queryValue(raw)
		if err != nil {
			return nil, fmt.Errorf("value of key %q: %w", key, err)
		}
		params.Set(key, value)
	}
	return params, nil
}

func queryValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("decode string: %w", err)
		}
		return s, nil
	case '{', '[':
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return "", fmt.Errorf("compact json: %w", err)
		}
		return compact.String(), nil
	default:
		return string(raw), nil
	}
}

// joinQuery appends the encoded params, sorted by key, to the destination's
// raw query. The destination's query keeps its exact text. A key present in
// both appears twice, first with the destination's value.
func joinQuery(rawQuery string, params url.Values) string {
	encoded := params.Encode()
	switch {
	case rawQuery == "":
		return encoded
	case encoded == "":
		return rawQuery
	default:
		return rawQuery + "&" + encoded
	}
}

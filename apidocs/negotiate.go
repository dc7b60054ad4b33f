package apidocs

import (
	"strconv"
	"strings"
)

// Media types that select each form of the document in an Accept header.
var (
	jsonMediaTypes = []string{"application/json", "application/vnd.oai.openapi+json", "application/openapi+json"}
	yamlMediaTypes = []string{
		"application/yaml", "application/x-yaml", "text/yaml",
		"application/vnd.oai.openapi", "application/openapi+yaml",
	}
)

// mediaRange is one element of an Accept header, such as "application/*;q=0.5".
type mediaRange struct {
	mainType, subType string
	quality           float64
}

// prefersJSON reports whether Accept header values rank a JSON media type
// above every YAML one (RFC 9110, section 12.5.1). Between equal quality
// values the more specific match wins, and a tie goes to YAML, the
// default, so "*/*" and a missing header select YAML.
func prefersJSON(accept []string) bool {
	ranges := parseAccept(accept)
	jsonQuality, jsonSpecificity := bestQuality(ranges, jsonMediaTypes)
	yamlQuality, yamlSpecificity := bestQuality(ranges, yamlMediaTypes)
	if jsonQuality <= 0 {
		return false
	}
	if jsonQuality != yamlQuality {
		return jsonQuality > yamlQuality
	}
	return jsonSpecificity > yamlSpecificity
}

// parseAccept parses Accept header values. Malformed elements are skipped.
func parseAccept(values []string) []mediaRange {
	var ranges []mediaRange
	for _, value := range values {
		for _, element := range strings.Split(value, ",") {
			mediaType, params, _ := strings.Cut(element, ";")
			mainType, subType, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mediaType)), "/")
			if !ok || mainType == "" || subType == "" {
				continue
			}
			ranges = append(ranges, mediaRange{mainType: mainType, subType: subType, quality: parseQuality(params)})
		}
	}
	return ranges
}

// parseQuality returns the q parameter in params, 1 when it is missing and
// 0 when it is invalid.
func parseQuality(params string) float64 {
	for _, param := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}

// bestQuality returns the highest quality the ranges give any of the media
// types, and the specificity of that match: 3 for an exact type, 2 for
// "type/*" and 1 for "*/*". For each media type, the most specific
// matching range sets its quality.
func bestQuality(ranges []mediaRange, mediaTypes []string) (quality float64, specificity int) {
	for _, mediaType := range mediaTypes {
		mainType, subType, _ := strings.Cut(mediaType, "/")
		q, s := -1.0, 0
		for _, r := range ranges {
			rs := r.specificity(mainType, subType)
			if rs > s {
				q, s = r.quality, rs
			}
		}
		if s > 0 && (q > quality || (q == quality && s > specificity)) {
			quality, specificity = q, s
		}
	}
	return quality, specificity
}

// specificity returns how closely r matches mainType/subType, or 0 when it
// does not match.
func (r mediaRange) specificity(mainType, subType string) int {
	switch {
	case r.mainType == mainType && r.subType == subType:
		return 3
	case r.mainType == mainType && r.subType == "*":
		return 2
	case r.mainType == "*" && r.subType == "*":
		return 1
	}
	return 0
}

package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/datapusher/datapusher"
)

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// query reads filter parameters from a URL query. Empty values count as
// missing, as in django-filter. Each invalid value records an error under
// the parameter's name. Unknown parameters are ignored.
type query struct {
	values url.Values
	errors datapusher.Validation
}

func newQuery(r *http.Request) *query {
	return &query{values: r.URL.Query()}
}

// string returns the parameter, or nil when it is missing or empty.
// PostgreSQL text cannot hold NUL or invalid UTF-8, so such values are
// rejected.
func (q *query) string(name string) *string {
	v := q.values.Get(name)
	if v == "" {
		return nil
	}
	if msg := checkText(v); msg != "" {
		q.errors.Add(name, msg)
		return nil
	}
	return &v
}

// search returns the search parameter of a list. A longer text than the
// longest searchable field, a destination URL, matches nothing, and SQLite
// rejects LIKE patterns over 50,000 bytes, so such a text is rejected.
func (q *query) search() *string {
	v := q.string("search")
	if v == nil {
		return nil
	}
	if utf8.RuneCountInString(*v) > maxURLLength {
		q.errors.Add("search", fmt.Sprintf("Ensure this field has no more than %d characters.", maxURLLength))
		return nil
	}
	return v
}

// checkText returns the message for text that no database column can hold,
// or "".
func checkText(v string) string {
	if strings.IndexByte(v, 0) >= 0 {
		return msgNullCharacter
	}
	if !utf8.ValidString(v) {
		return "Enter valid UTF-8 text."
	}
	return ""
}

// uuid returns a parameter that must be a UUID.
func (q *query) uuid(name string) *string {
	v := q.string(name)
	if v == nil {
		return nil
	}
	if !isUUID(*v) {
		q.errors.Add(name, fmt.Sprintf("%q is not a valid UUID.", *v))
		return nil
	}
	return v
}

// time returns a parameter that must be an RFC 3339 timestamp.
func (q *query) time(name string) *time.Time {
	v := q.string(name)
	if v == nil {
		return nil
	}
	t, msg := parseTime(*v)
	if msg != "" {
		q.errors.Add(name, msg)
		return nil
	}
	return &t
}

// choice returns a parameter that must be one of choices.
func (q *query) choice(name string, choices []string) *string {
	v := q.string(name)
	if v == nil {
		return nil
	}
	if !slices.Contains(choices, *v) {
		q.errors.Add(name, fmt.Sprintf("Select a valid choice. %q is not one of: %s.", *v, strings.Join(choices, ", ")))
		return nil
	}
	return v
}

// ordering returns the ordering parameter, which must name a key of allowed,
// optionally prefixed with "-" for descending order.
func (q *query) ordering(allowed map[string]string) string {
	v := q.string("ordering")
	if v == nil {
		return ""
	}
	if _, ok := allowed[strings.TrimPrefix(*v, "-")]; ok {
		return *v
	}
	var names []string
	for name := range allowed {
		names = append(names, name, "-"+name)
	}
	sort.Strings(names)
	q.errors.Add("ordering", fmt.Sprintf("Select a valid choice. %q is not one of: %s.", *v, strings.Join(names, ", ")))
	return ""
}

// intRange returns an integer parameter between minimum and maximum, or
// fallback when it is missing.
func (q *query) intRange(name string, fallback, minimum, maximum int) int {
	v := q.string(name)
	if v == nil {
		return fallback
	}
	n, err := strconv.Atoi(*v)
	if err != nil || n < minimum || n > maximum {
		q.errors.Add(name, fmt.Sprintf("Enter a whole number from %d to %d.", minimum, maximum))
		return fallback
	}
	return n
}

// page returns the page number and size of a page-number paginated list.
func (q *query) page() pageRequest {
	return pageRequest{
		number: q.intRange("page", 1, 1, 1<<31-1),
		size:   q.intRange("page_size", defaultPageSize, 1, maxPageSize),
	}
}

func (q *query) err() error { return q.errors.Err() }

// isUUID reports whether s is a UUID in its 36-character text form, the only
// form the store accepts.
func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// pageRequest is the page number and size of a page-number paginated list.
type pageRequest struct {
	number, size int
}

func (p pageRequest) offset() int { return (p.number - 1) * p.size }

// page is the body of a page-number paginated list response.
type page[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// newPage returns the response body for one page of count results, with
// links to the pages beside it. A page past the last one is ENOTFOUND, as
// in Django REST Framework.
func newPage[T any](s *Server, r *http.Request, p pageRequest, count int, results []T) (*page[T], error) {
	if p.number > 1 && p.offset() >= count {
		return nil, datapusher.Errorf(datapusher.ENOTFOUND, "Invalid page.")
	}
	body := &page[T]{Count: count, Results: results}
	if p.offset()+len(results) < count {
		next := s.pageURL(r, "page", strconv.Itoa(p.number+1))
		body.Next = &next
	}
	if p.number == 2 {
		previous := s.pageURL(r, "page", "")
		body.Previous = &previous
	} else if p.number > 2 {
		previous := s.pageURL(r, "page", strconv.Itoa(p.number-1))
		body.Previous = &previous
	}
	return body, nil
}

// pageURL returns the full URL of the request with the parameter replaced,
// or removed when value is empty.
func (s *Server) pageURL(r *http.Request, name, value string) string {
	values := r.URL.Query()
	if value == "" {
		values.Del(name)
	} else {
		values.Set(name, value)
	}
	u := url.URL{Path: r.URL.Path, RawQuery: values.Encode()}
	return s.baseURL(r) + u.String()
}

// baseURL returns the scheme and host for links in responses.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicBaseURL != "" {
		return strings.TrimSuffix(s.cfg.PublicBaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

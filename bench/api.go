package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// requestedRateLimit is the rate_limit_per_second that the harness requests,
// so that the account limit never throttles the load. A server whose maximum
// is lower rejects it with a message that names its maximum, and the
// harness then sets that maximum.
const requestedRateLimit = 1_000_000

// setupConcurrency is the number of destinations created at once.
const setupConcurrency = 8

// maxRetries is the number of times a management API request is retried
// after a 429 response. A -target server keeps its own API rate limit, so
// creating 500 destinations can take many retries.
const maxRetries = 10

// apiClient calls the management API of the server under test.
type apiClient struct {
	baseURL string
	http    *http.Client
	access  string
}

// apiError is a response with an unexpected status code.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends a JSON request and decodes the JSON response into out when its
// status is want. A 429 response is retried after its Retry-After, up to
// maxRetries times.
func (c *apiClient) call(ctx context.Context, method, path string, body any, want int, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", method, path, err)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		req.Header.Set("Content-Type", "application/json")
		if c.access != "" {
			req.Header.Set("Authorization", "Bearer "+c.access)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read %s %s response: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < maxRetries {
			if err := sleepContext(ctx, retryAfter(resp.Header)); err != nil {
				return err
			}
			continue
		}
		if resp.StatusCode != want {
			return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("decode %s %s response: %w", method, path, err)
			}
		}
		return nil
	}
}

// retryAfter returns the wait of a Retry-After header in seconds, between
// 1 and 5 seconds.
func retryAfter(h http.Header) time.Duration {
	seconds, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil {
		seconds = 1
	}
	return time.Duration(min(max(seconds, 1), 5)) * time.Second
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// benchAccount is the account that a scenario sends its events to.
type benchAccount struct {
	ID        string
	Token     string // app secret token for CL-X-TOKEN
	RateLimit int    // rate_limit_per_second set on the account
}

// setupAccount registers a new user, signs in, creates an account with the
// highest rate limit the server accepts, and one POST destination for each
// of destinationURLs.
func setupAccount(ctx context.Context, c *apiClient, destinationURLs []string) (*benchAccount, error) {
	random := make([]byte, 8)
	_, _ = rand.Read(random)
	email := "bench-" + hex.EncodeToString(random) + "@example.com"
	password := "bench-password-" + hex.EncodeToString(random)
	credentials := map[string]string{"email": email, "password": password}
	if err := c.call(ctx, http.MethodPost, "/api/users/register/", credentials, http.StatusCreated, nil); err != nil {
		return nil, fmt.Errorf("register user: %w", err)
	}
	var tokens struct {
		Access string `json:"access"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/token/", credentials, http.StatusOK, &tokens); err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	c.access = tokens.Access

	var created struct {
		AccountID      string `json:"account_id"`
		AppSecretToken string `json:"app_secret_token"`
	}
	err := c.call(ctx, http.MethodPost, "/api/accounts/", map[string]string{"account_name": "Benchmark"},
		http.StatusCreated, &created)
	if err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	account := &benchAccount{ID: created.AccountID, Token: created.AppSecretToken}
	if account.RateLimit, err = setRateLimit(ctx, c, account.ID); err != nil {
		return nil, err
	}
	if err := createDestinations(ctx, c, account.ID, destinationURLs); err != nil {
		return nil, err
	}
	return account, nil
}

// maxRateLimitMessage finds the maximum in the 400 message for a
// rate_limit_per_second out of range: "Enter a whole number from 1 to N."
var maxRateLimitMessage = regexp.MustCompile(`from 1 to (\d+)`)

// setRateLimit sets the account's rate_limit_per_second to
// requestedRateLimit, or to the server's maximum when that is lower, and
// returns the limit set.
func setRateLimit(ctx context.Context, c *apiClient, accountID string) (int, error) {
	path := "/api/accounts/" + accountID + "/"
	err := c.call(ctx, http.MethodPatch, path, map[string]int{"rate_limit_per_second": requestedRateLimit},
		http.StatusOK, nil)
	if err == nil {
		return requestedRateLimit, nil
	}
	limit, ok := serverMaxRateLimit(err)
	if !ok {
		return 0, fmt.Errorf("set rate limit: %w", err)
	}
	err = c.call(ctx, http.MethodPatch, path, map[string]int{"rate_limit_per_second": limit}, http.StatusOK, nil)
	if err != nil {
		return 0, fmt.Errorf("set rate limit to the server maximum %d: %w", limit, err)
	}
	return limit, nil
}

// serverMaxRateLimit returns the maximum rate_limit_per_second named in the
// 400 response err, if it is one.
func serverMaxRateLimit(err error) (int, bool) {
	apiErr, ok := err.(*apiError)
	if !ok || apiErr.Status != http.StatusBadRequest {
		return 0, false
	}
	match := maxRateLimitMessage.FindStringSubmatch(apiErr.Body)
	if match == nil {
		return 0, false
	}
	limit, err := strconv.Atoi(match[1])
	return limit, err == nil && limit > 0
}

// createDestinations creates one POST destination per URL, a few at a time.
func createDestinations(ctx context.Context, c *apiClient, accountID string, urls []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		workers  sync.WaitGroup
	)
	next := make(chan string)
	for range setupConcurrency {
		workers.Go(func() {
			for u := range next {
				body := map[string]any{
					"account_id": accountID, "url": u, "http_method": "POST", "headers": map[string]string{},
				}
				if err := c.call(ctx, http.MethodPost, "/api/destinations/", body, http.StatusCreated, nil); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create destination %s: %w", u, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range urls {
		if ctx.Err() != nil {
			break
		}
		next <- u
	}
	close(next)
	workers.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

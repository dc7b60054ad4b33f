package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/datapusher/datapusher/ratelimit"
)

// This example limits failed logins per email address: it checks the limit
// without consuming it before each attempt and records only failures.
func ExampleLimiter_loginFailures() {
	ctx := context.Background()
	var limiter ratelimit.Limiter = ratelimit.NewLocal()
	limit := ratelimit.PerMinute(5)
	key := "login_email:ada@example.com"

	for attempt := 1; attempt <= 6; attempt++ {
		check, err := limiter.AllowN(ctx, key, limit, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		if !check.Allowed {
			header := http.Header{}
			check.SetHeaders(header)
			fmt.Printf("attempt %d: rejected, Retry-After %s\n", attempt, header.Get("Retry-After"))
			continue
		}

		// The password was wrong, so the attempt counts as a failure.
		if _, err := limiter.Allow(ctx, key, limit); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("attempt %d: failed\n", attempt)
	}

	// Output:
	// attempt 1: failed
	// attempt 2: failed
	// attempt 3: failed
	// attempt 4: failed
	// attempt 5: failed
	// attempt 6: rejected, Retry-After 12
}

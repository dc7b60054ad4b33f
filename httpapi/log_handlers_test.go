package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestListLogs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		d := fx.createDestination(fx.account)
		var logIDs []string
		for i := range 5 {
			logs := fx.createEvent(fx.account, fmt.Sprintf("evt-%d", i), d)
			logIDs = append(logIDs, logs[0].ID)
		}
		code := 200
		require.NoError(t, fx.store.RecordAttempt(ctx, logIDs[0], sqlstore.AttemptOutcome{
			Attempt: &datapusher.Attempt{StartedAt: time.Now(), RequestURL: d.URL, ResponseStatus: &code},
			Status:  datapusher.StatusSuccess, Final: true,
		}))
		other := fx.createAccount(fx.outsider, "Other")
		fx.createEvent(other, "evt-other", fx.createDestination(other))

		t.Run("OnlyMemberLogs", func(t *testing.T) {
			resp := fx.do("GET", "/api/logs/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Len(t, resp.results(t), 5)
			body := resp.object(t)
			require.Nil(t, body["next"])
			require.Nil(t, body["previous"])
			require.Len(t, fx.do("GET", "/api/logs/", fx.super, nil).results(t), 6)
		})
		t.Run("Filters", func(t *testing.T) {
			query := url.Values{"status": {"success"}, "account_id": {fx.account.AccountID}, "destination_id": {d.ID}}
			results := fx.do("GET", "/api/logs/?"+query.Encode(), fx.admin, nil).results(t)
			require.Len(t, results, 1)
			require.Equal(t, logIDs[0], results[0]["id"])

			results = fx.do("GET", "/api/logs/?event_id=evt-3", fx.admin, nil).results(t)
			require.Len(t, results, 1)
			require.Equal(t, map[string]any{"n": float64(1)}, results[0]["received_data"])

			future := url.Values{"received_timestamp__gte": {time.Now().Add(time.Hour).Format(time.RFC3339)}}
			require.Empty(t, fx.do("GET", "/api/logs/?"+future.Encode(), fx.admin, nil).results(t))
			processed := url.Values{"processed_timestamp__lte": {time.Now().Add(time.Hour).Format(time.RFC3339)}}
			require.Len(t, fx.do("GET", "/api/logs/?"+processed.Encode(), fx.admin, nil).results(t), 1)
		})
		t.Run("TimeBoundRange", func(t *testing.T) {
			widest := url.Values{
				"received_timestamp__gte": {"0001-01-01T00:00:00Z"}, "received_timestamp__lte": {"9999-12-31T23:59:59Z"},
			}
			require.Len(t, fx.do("GET", "/api/logs/?"+widest.Encode(), fx.admin, nil).results(t), 5)
			for _, bound := range []string{"9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00"} {
				query := url.Values{"received_timestamp__lte": {bound}}
				resp := fx.do("GET", "/api/logs/?"+query.Encode(), fx.admin, nil)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Equal(t, []any{"Enter a time from year 1 to year 9999 in UTC."},
					resp.object(t)["received_timestamp__lte"], bound)
			}
		})
		t.Run("CursorPages", func(t *testing.T) {
			next := "/api/logs/?page_size=2&ordering=received_timestamp"
			var seen []string
			var pages []map[string]any
			for next != "" {
				resp := fx.do("GET", next, fx.admin, nil)
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
				for _, l := range resp.results(t) {
					seen = append(seen, l["id"].(string))
				}
				body := resp.object(t)
				pages = append(pages, body)
				next = ""
				if link, ok := body["next"].(string); ok {
					require.True(t, strings.HasPrefix(link, "http://example.com/api/logs/?"), link)
					require.Contains(t, link, "page_size=2")
					next = strings.TrimPrefix(link, "http://example.com")
				}
			}
			require.Equal(t, logIDs, seen)
			require.Len(t, pages, 3)

			previous := strings.TrimPrefix(pages[2]["previous"].(string), "http://example.com")
			back := fx.do("GET", previous, fx.admin, nil).results(t)
			require.Equal(t, logIDs[2], back[0]["id"])
			require.Equal(t, logIDs[3], back[1]["id"])
		})
		for name, query := range map[string]string{
			"status":                   "status=done",
			"account_id":               "account_id=abc",
			"destination_id":           "destination_id=1",
			"received_timestamp__gte":  "received_timestamp__gte=2026-13-01",
			"processed_timestamp__lte": "processed_timestamp__lte=now",
			"ordering":                 "ordering=status",
			"cursor":                   "cursor=bm9wZQ",
			"page_size":                "page_size=0",
		} {
			t.Run("Rejects_"+name, func(t *testing.T) {
				resp := fx.do("GET", "/api/logs/?"+query, fx.admin, nil)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), name)
			})
		}
		t.Run("PublicBaseURL", func(t *testing.T) {
			server := NewServer(Config{SecretKey: testSecretKey, PublicBaseURL: "https://api.example.test/"},
				fx.store, fx.events, nil)
			resp := doRequest(t, server.Handler(), "GET", "/api/logs/?page_size=1", fx.admin, nil)
			require.True(t, strings.HasPrefix(resp.object(t)["next"].(string), "https://api.example.test/api/logs/?"))
		})
	})
}

func TestGetLog(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		l := fx.createEvent(fx.account, "evt-1", d)[0]
		code := 503
		require.NoError(t, fx.store.RecordAttempt(context.Background(), l.ID, sqlstore.AttemptOutcome{
			Attempt: &datapusher.Attempt{StartedAt: time.Now(), RequestURL: d.URL, ResponseStatus: &code,
				ErrorClass: "http_status", ErrorMessage: "503 Service Unavailable"},
			Status: datapusher.StatusRetrying,
		}))

		t.Run("Detail", func(t *testing.T) {
			resp := fx.do("GET", "/api/logs/"+l.ID+"/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			body := resp.object(t)
			require.Equal(t, "retrying", body["status"])
			require.Equal(t, float64(1), body["attempts"])
			require.Equal(t, float64(503), body["response_status_code"])
			require.Equal(t, "evt-1", body["event_id"])
		})
		t.Run("Attempts", func(t *testing.T) {
			resp := fx.do("GET", "/api/logs/"+l.ID+"/attempts/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			attempts := resp.list(t)
			require.Len(t, attempts, 1)
			require.Equal(t, float64(1), attempts[0]["number"])
			require.Equal(t, "http_status", attempts[0]["error_class"])
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			require.Equal(t, http.StatusNotFound, fx.do("GET", "/api/logs/"+l.ID+"/", fx.outsider, nil).status)
			require.Equal(t, http.StatusNotFound, fx.do("GET", "/api/logs/"+l.ID+"/attempts/", fx.outsider, nil).status)
		})
		t.Run("UnknownLog", func(t *testing.T) {
			require.Equal(t, http.StatusNotFound, fx.do("GET", "/api/logs/nope/", fx.super, nil).status)
		})
	})
}

func TestSendTestEvent(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("PassesDataBytes", func(t *testing.T) {
			body := `{"account_id": "` + fx.account.AccountID + `", "event_id": "evt-9", "data": {"b": 2,  "a": [1, 2.50]}}`
			req := fx.do("POST", "/api/logs/", fx.admin, body)
			require.Equal(t, http.StatusAccepted, req.status, "%s", req.body)
			require.Equal(t, map[string]any{"success": true, "message": "Data Received", "event_id": "evt-9"}, req.object(t))

			got := fx.events.last()
			require.Equal(t, fx.account.AccountID, got.accountID)
			require.Equal(t, "evt-9", got.eventID)
			require.Equal(t, `{"b": 2,  "a": [1, 2.50]}`, string(got.body))
			require.NotEmpty(t, got.requestID)
		})
		t.Run("WithoutEventID", func(t *testing.T) {
			resp := fx.do("POST", "/api/logs/", fx.super, map[string]any{"account_id": fx.account.AccountID, "data": map[string]any{}})
			require.Equal(t, http.StatusAccepted, resp.status)
			require.Equal(t, "", fx.events.last().eventID)
			require.NotEmpty(t, resp.object(t)["event_id"])
		})
		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("POST", "/api/logs/", fx.normal, map[string]any{"account_id": fx.account.AccountID, "data": map[string]any{}})
			require.Equal(t, http.StatusForbidden, resp.status)
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := fx.do("POST", "/api/logs/", fx.outsider, map[string]any{"account_id": fx.account.AccountID, "data": map[string]any{}})
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		for name, eventID := range map[string]string{
			"TooLong": strings.Repeat("e", 256), "NotASCII": "ünï", "Tab": "a\tb",
		} {
			t.Run("RejectsEventID"+name, func(t *testing.T) {
				resp := fx.do("POST", "/api/logs/", fx.admin, map[string]any{
					"account_id": fx.account.AccountID, "event_id": eventID, "data": map[string]any{},
				})
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), "event_id")
			})
		}
		for name, data := range map[string]string{"Missing": ``, "List": `, "data": [1]`, "Null": `, "data": null`, "Text": `, "data": "x"`} {
			t.Run("RejectsData"+name, func(t *testing.T) {
				resp := fx.do("POST", "/api/logs/", fx.admin, `{"account_id": "`+fx.account.AccountID+`"`+data+`}`)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), "data")
			})
		}
	})
}

func TestSendTestEventOutcomes(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		body := map[string]any{"account_id": fx.account.AccountID, "event_id": "evt-1", "data": map[string]any{"a": 1}}
		t.Run("Duplicate", func(t *testing.T) {
			fx.events.mu.Lock()
			fx.events.duplicate = true
			fx.events.mu.Unlock()
			resp := fx.do("POST", "/api/logs/", fx.admin, body)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, true, resp.object(t)["duplicate"])
		})
		t.Run("Invalid", func(t *testing.T) {
			fx.events.mu.Lock()
			fx.events.err = datapusher.FieldError("event_id", "Event id is too long.")
			fx.events.mu.Unlock()
			resp := fx.do("POST", "/api/logs/", fx.admin, body)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Equal(t, map[string]any{"event_id": []any{"Event id is too long."}}, resp.object(t))
		})
		t.Run("Unavailable", func(t *testing.T) {
			fx.events.mu.Lock()
			fx.events.err = datapusher.Errorf(datapusher.EUNAVAILABLE, "database down")
			fx.events.mu.Unlock()
			resp := fx.do("POST", "/api/logs/", fx.admin, body)
			require.Equal(t, http.StatusServiceUnavailable, resp.status)
			require.Equal(t, map[string]any{"detail": "Service Unavailable"}, resp.object(t))
		})
		t.Run("InternalErrorIsHidden", func(t *testing.T) {
			fx.events.mu.Lock()
			fx.events.err = fmt.Errorf("insert event: connection to 10.1.2.3 lost")
			fx.events.mu.Unlock()
			resp := fx.do("POST", "/api/logs/", fx.admin, body)
			require.Equal(t, http.StatusInternalServerError, resp.status)
			require.Equal(t, map[string]any{"detail": "Internal error."}, resp.object(t))
			require.Contains(t, fx.logs.String(), "connection to 10.1.2.3 lost")
		})
	})
}

func TestRetryLog(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		d := fx.createDestination(fx.account)
		l := fx.createEvent(fx.account, "evt-retry", d)[0]
		code := 500
		require.NoError(t, fx.store.RecordAttempt(ctx, l.ID, sqlstore.AttemptOutcome{
			Attempt: &datapusher.Attempt{StartedAt: time.Now(), RequestURL: d.URL, ResponseStatus: &code,
				ErrorClass: "http_status", ErrorMessage: "500 Internal Server Error"},
			Status: datapusher.StatusFailed, Final: true,
		}))
		path := "/api/logs/" + l.ID + "/retry/"

		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("POST", path, fx.normal, nil)
			require.Equal(t, http.StatusForbidden, resp.status)
			require.Empty(t, fx.enqueued.all())
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := fx.do("POST", path, fx.outsider, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
			require.Equal(t, map[string]any{"detail": msgNotFound}, resp.object(t))
		})
		t.Run("UnknownLog", func(t *testing.T) {
			require.Equal(t, http.StatusNotFound, fx.do("POST", "/api/logs/00000000-0000-0000-0000-000000000000/retry/", fx.super, nil).status)
			require.Equal(t, http.StatusNotFound, fx.do("POST", "/api/logs/nope/retry/", fx.super, nil).status)
		})
		t.Run("RequiresSignIn", func(t *testing.T) {
			require.Equal(t, http.StatusUnauthorized, fx.do("POST", path, nil, nil).status)
		})
		t.Run("QueuesSameLog", func(t *testing.T) {
			resp := fx.do("POST", path, fx.admin, nil)
			require.Equal(t, http.StatusAccepted, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, l.ID, body["id"])
			require.Equal(t, "pending", body["status"])
			require.Nil(t, body["processed_timestamp"])
			require.Equal(t, float64(1), body["attempts"], "earlier attempts are kept")
			require.Equal(t, "evt-retry", body["event_id"])
			require.Equal(t, []string{l.ID}, fx.enqueued.all())

			// The body has the shape of GET /api/logs/{id}/.
			detail := fx.do("GET", "/api/logs/"+l.ID+"/", fx.admin, nil).object(t)
			require.Equal(t, keysOf(detail), keysOf(body))
			require.Equal(t, "pending", detail["status"])
		})
		t.Run("NewAttemptsOnSameLog", func(t *testing.T) {
			ok := 200
			require.NoError(t, fx.store.RecordAttempt(ctx, l.ID, sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: time.Now(), RequestURL: d.URL, ResponseStatus: &ok},
				Status:  datapusher.StatusSuccess, Final: true,
			}))
			attempts := fx.do("GET", "/api/logs/"+l.ID+"/attempts/", fx.normal, nil).list(t)
			require.Len(t, attempts, 2)
			require.Equal(t, float64(2), attempts[1]["number"])
		})
		t.Run("SuperuserMayRetry", func(t *testing.T) {
			fx.enqueued.reset()
			require.Equal(t, http.StatusAccepted, fx.do("POST", path, fx.super, nil).status)
			require.Equal(t, []string{l.ID}, fx.enqueued.all())
		})
	})
}

func TestRetryLogQueueFailure(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		l := fx.createEvent(fx.account, "evt-1", d)[0]
		path := "/api/logs/" + l.ID + "/retry/"

		t.Run("NoQueue", func(t *testing.T) {
			s := NewServer(Config{SecretKey: testSecretKey}, fx.store, fx.events, slog.New(slog.DiscardHandler))
			resp := doRequest(t, s.Handler(), "POST", path, fx.admin, nil)
			require.Equal(t, http.StatusServiceUnavailable, resp.status)
		})
		t.Run("EnqueueErrorRollsBack", func(t *testing.T) {
			failing := func(context.Context, *sql.Tx, []*datapusher.DeliveryLog) error {
				return errors.New("queue unreachable")
			}
			s := NewServer(Config{SecretKey: testSecretKey, Enqueue: failing}, fx.store, fx.events,
				slog.New(slog.DiscardHandler))
			require.NoError(t, fx.store.RecordAttempt(context.Background(), l.ID, sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: time.Now(), RequestURL: d.URL, ErrorClass: "timeout"},
				Status:  datapusher.StatusFailed, Final: true,
			}))
			resp := doRequest(t, s.Handler(), "POST", path, fx.admin, nil)
			require.Equal(t, http.StatusInternalServerError, resp.status)
			require.Equal(t, map[string]any{"detail": msgInternal}, resp.object(t))
			require.Equal(t, "failed", fx.do("GET", "/api/logs/"+l.ID+"/", fx.admin, nil).object(t)["status"])
		})
	})
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(object map[string]any) []string {
	keys := make([]string, 0, len(object))
	for k := range object {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package sender

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// referenceSignature computes a Standard Webhooks signature without Sign, as
// a receiver would. The signature is HMAC-SHA256 over "id.timestamp.payload"
// with the base64 decoded secret as key.
func referenceSignature(t *testing.T, secret, id string, timestamp int64, payload []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	_, err = fmt.Fprintf(mac, "%s.%d.%s", id, timestamp, payload)
	require.NoError(t, err)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignMatchesReference(t *testing.T) {
	t.Parallel()
	payload := []byte("{\"a\": 1,\n\"b\":\"\u00e9\"}")

	got, err := Sign(testSecret, "msg_2fTQ8bH1", 1700000123, payload)

	require.NoError(t, err)
	require.Equal(t, referenceSignature(t, testSecret, "msg_2fTQ8bH1", 1700000123, payload), got)
}

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// Test vector of the Svix webhook libraries (PHP testSignFunctionWorks),
	// which implement Standard Webhooks. Its key decodes to 24 bytes.
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`))

	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", got)
}

func TestSignInvalidSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret string
		want   string
	}{
		{"", "missing prefix"},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "missing prefix"},
		{"whsec_", "empty key"},
		{"whsec_not*base64!", "illegal base64 data"},
	}
	for _, tt := range tests {
		_, err := Sign(tt.secret, "msg_1", 1, []byte("{}"))
		require.ErrorContains(t, err, tt.want, "secret %q", tt.secret)
		require.ErrorContains(t, err, "invalid signing secret")
		if len(tt.secret) > len(SecretPrefix) {
			require.NotContains(t, err.Error(), tt.secret[len(SecretPrefix):])
		}
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	first, err := NewSecret()
	require.NoError(t, err)
	second, err := NewSecret()
	require.NoError(t, err)

	require.True(t, strings.HasPrefix(first, "whsec_"), "secret %q", first)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(first, "whsec_"))
	require.NoError(t, err)
	require.Len(t, key, 32)
	require.NotEqual(t, first, second)

	signature, err := Sign(first, "msg_1", 1, []byte("{}"))
	require.NoError(t, err)
	require.Equal(t, referenceSignature(t, first, "msg_1", 1, []byte("{}")), signature)
}

func TestSendTwoSecrets(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	secondSecret, err := NewSecret()
	require.NoError(t, err)
	body := `{"order":42}`
	request := postRequest(server.URL, body)
	request.Secrets = []string{testSecret, secondSecret}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	header := rec.only(t).Header.Get("webhook-signature")
	signatures := strings.Split(header, " ")
	require.Len(t, signatures, 2, "header %q", header)
	require.Equal(t, referenceSignature(t, testSecret, "msg_1", 1700000000, []byte(body)), signatures[0])
	require.Equal(t, referenceSignature(t, secondSecret, "msg_1", 1700000000, []byte(body)), signatures[1])
}

func TestSendWithoutSecrets(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	request := postRequest(server.URL, `{}`)
	request.Secrets = nil
	request.WebhookID = ""

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	got := rec.only(t)
	require.Empty(t, got.Header.Values("webhook-signature"))
	require.Equal(t, "evt_1", got.Header.Get("webhook-id"), "webhook-id should fall back to the event id")
	require.Equal(t, "1700000000", got.Header.Get("webhook-timestamp"))
}

func TestSendSignatureVerifiesAtReceiver(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	sender := newTestSender(Options{})

	// The check recomputes the signature from what the server received, as a
	// Standard Webhooks verifier does. The payload is the query for GET and
	// the body otherwise.
	for i, method := range []string{http.MethodPost, http.MethodGet} {
		request := postRequest(server.URL+"/?existing=1", `{"id":"evt_1","amount":10.00}`)
		request.Method = method

		result := sender.Send(t.Context(), request)

		require.NoError(t, result.Err)
		got := rec.all()[i]
		payload := got.Body
		if method == http.MethodGet {
			payload = []byte(got.RawQuery)
		}
		timestamp, err := strconv.ParseInt(got.Header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err)
		want := referenceSignature(t, testSecret, got.Header.Get("webhook-id"), timestamp, payload)
		require.Equal(t, want, got.Header.Get("webhook-signature"), "method %s", method)
	}
}

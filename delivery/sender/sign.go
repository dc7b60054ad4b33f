package sender

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every signing secret, as in Standard Webhooks.
const SecretPrefix = "whsec_"

// secretKeyBytes is the size of the HMAC key that NewSecret generates.
const secretKeyBytes = 32

// NewSecret returns a new signing secret: SecretPrefix followed by the
// standard base64 encoding of 32 random bytes.
func NewSecret() (string, error) {
	key := make([]byte, secretKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate signing secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Sign returns the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of
// "<id>.<ts>.<payload>". The HMAC key is the base64 decoding of the part of
// secret after SecretPrefix. The error never contains the secret.
func Sign(secret, id string, ts int64, payload []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func decodeSecret(secret string) ([]byte, error) {
	encoded, found := strings.CutPrefix(secret, SecretPrefix)
	if !found {
		return nil, fmt.Errorf("invalid signing secret: missing prefix %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("invalid signing secret: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("invalid signing secret: empty key")
	}
	return key, nil
}

// signatureHeader returns the webhook-signature header value: one signature
// per secret, separated by spaces. It returns "" when there are no secrets.
func signatureHeader(secrets []string, id string, ts int64, payload []byte) (string, error) {
	signatures := make([]string, 0, len(secrets))
	for i, secret := range secrets {
		signature, err := Sign(secret, id, ts, payload)
		if err != nil {
			return "", fmt.Errorf("signing secret %d of %d: %w", i+1, len(secrets), err)
		}
		signatures = append(signatures, signature)
	}
	return strings.Join(signatures, " "), nil
}

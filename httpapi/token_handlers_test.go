package httpapi

import (
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher/internal/testdb"
)

// signIn returns the access and refresh tokens for email and testPassword.
func (fx *fixture) signIn(t *testing.T, email string) (access, refresh string) {
	t.Helper()
	resp := fx.do("POST", "/api/token/", nil, map[string]any{"email": email, "password": testPassword})
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	body := resp.object(t)
	return body["access"].(string), body["refresh"].(string)
}

func TestToken(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		badCredentials := map[string]any{"detail": "No active account found with the given credentials"}

		t.Run("IssuesWorkingTokens", func(t *testing.T) {
			access, refresh := fx.signIn(t, "Normal@Example.com")
			resp := fx.do("GET", "/api/users/me/", &persona{access: access}, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, fx.normal.user.ID, resp.object(t)["id"])

			claims := &tokenClaims{}
			_, _, err := jwt.NewParser().ParseUnverified(refresh, claims)
			require.NoError(t, err)
			require.Equal(t, tokenTypeRefresh, claims.TokenType)
			require.Equal(t, fx.normal.user.ID, claims.Subject)
			require.WithinDuration(t, time.Now().Add(DefaultRefreshTokenTTL), claims.ExpiresAt.Time, time.Minute)
			_, _, err = jwt.NewParser().ParseUnverified(access, claims)
			require.NoError(t, err)
			require.WithinDuration(t, time.Now().Add(DefaultAccessTokenTTL), claims.ExpiresAt.Time, time.Minute)
		})
		t.Run("WrongPassword", func(t *testing.T) {
			resp := fx.do("POST", "/api/token/", nil, map[string]any{"email": "normal@example.com", "password": "wrong password"})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, badCredentials, resp.object(t))
		})
		t.Run("UnknownEmail", func(t *testing.T) {
			resp := fx.do("POST", "/api/token/", nil, map[string]any{"email": "nobody@example.com", "password": testPassword})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, badCredentials, resp.object(t))
		})
		t.Run("UserWithoutPassword", func(t *testing.T) {
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": fx.account.AccountID, "email": "invited@example.com", "role_id": 2,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			resp = fx.do("POST", "/api/token/", nil, map[string]any{"email": "invited@example.com", "password": ""})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, badCredentials, resp.object(t))
		})
		t.Run("MissingFields", func(t *testing.T) {
			resp := fx.do("POST", "/api/token/", nil, map[string]any{})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "email")
			require.Contains(t, resp.object(t), "password")
		})
	})
}

func TestRefreshAndLogout(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("RefreshIssuesAccess", func(t *testing.T) {
			_, refresh := fx.signIn(t, "admin@example.com")
			resp := fx.do("POST", "/api/token/refresh/", nil, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			access := resp.object(t)["access"].(string)
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", &persona{access: access}, nil).status)
		})
		t.Run("AccessTokenIsNotRefresh", func(t *testing.T) {
			access, _ := fx.signIn(t, "admin@example.com")
			resp := fx.do("POST", "/api/token/refresh/", nil, map[string]any{"refresh": access})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, "token_not_valid", resp.object(t)["code"])
		})
		t.Run("RefreshTokenIsNotAccess", func(t *testing.T) {
			_, refresh := fx.signIn(t, "admin@example.com")
			resp := fx.do("GET", "/api/users/me/", &persona{access: refresh}, nil)
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, "token_not_valid", resp.object(t)["code"])
		})
		t.Run("LogoutRevokesRefresh", func(t *testing.T) {
			access, refresh := fx.signIn(t, "normal@example.com")
			me := &persona{access: access}
			resp := fx.do("POST", "/api/users/logout/", me, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusResetContent, resp.status, "%s", resp.body)
			require.Empty(t, resp.body)

			resp = fx.do("POST", "/api/token/refresh/", nil, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, "token_not_valid", resp.object(t)["code"])
			resp = fx.do("POST", "/api/users/logout/", me, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusUnauthorized, resp.status)
		})
		t.Run("LogoutRejectsOtherUsersToken", func(t *testing.T) {
			_, refresh := fx.signIn(t, "admin@example.com")
			resp := fx.do("POST", "/api/users/logout/", fx.normal, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusUnauthorized, resp.status)
			resp = fx.do("POST", "/api/token/refresh/", nil, map[string]any{"refresh": refresh})
			require.Equal(t, http.StatusOK, resp.status, "the token stays active")
		})
		t.Run("LogoutRequiresRefresh", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/logout/", fx.normal, map[string]any{})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "refresh")
		})
		t.Run("ExpiredRefreshRejected", func(t *testing.T) {
			_, refresh := fx.signIn(t, "admin@example.com")
			claims := &tokenClaims{}
			_, _, err := jwt.NewParser().ParseUnverified(refresh, claims)
			require.NoError(t, err)
			claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Second))
			expired := signHS(t, jwt.SigningMethodHS256, claims)
			resp := fx.do("POST", "/api/token/refresh/", nil, map[string]any{"refresh": expired})
			require.Equal(t, http.StatusUnauthorized, resp.status)
		})
	})
}

func signHS(t *testing.T, method jwt.SigningMethod, claims jwt.Claims) string {
	t.Helper()
	signed, err := jwt.NewWithClaims(method, claims).SignedString(testSecretKey)
	require.NoError(t, err)
	return signed
}

func TestAccessTokenValidation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		valid := func() *tokenClaims {
			now := time.Now()
			return &tokenClaims{TokenType: tokenTypeAccess, RegisteredClaims: jwt.RegisteredClaims{
				Subject: fx.admin.user.ID, ID: uuid.NewString(),
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			}}
		}
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		none, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, valid()).SignedString(rsaKey)
		require.NoError(t, err)
		expired := valid()
		expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Second))
		noExpiry := valid()
		noExpiry.ExpiresAt = nil
		wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SignedString([]byte("another key"))
		require.NoError(t, err)
		unknownUser := valid()
		unknownUser.Subject = uuid.NewString()

		t.Run("AcceptsHS256", func(t *testing.T) {
			resp := fx.do("GET", "/api/users/me/", &persona{access: signHS(t, jwt.SigningMethodHS256, valid())}, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		})
		rejected := map[string]string{
			"AlgNone":     none,
			"HS512":       signHS(t, jwt.SigningMethodHS512, valid()),
			"RS256":       rs256,
			"Expired":     signHS(t, jwt.SigningMethodHS256, expired),
			"NoExpiry":    signHS(t, jwt.SigningMethodHS256, noExpiry),
			"WrongKey":    wrongKey,
			"UnknownUser": signHS(t, jwt.SigningMethodHS256, unknownUser),
		}
		for name, token := range rejected {
			t.Run("Rejects"+name, func(t *testing.T) {
				resp := fx.do("GET", "/api/users/me/", &persona{access: token}, nil)
				require.Equal(t, http.StatusUnauthorized, resp.status, "%s", resp.body)
				require.Equal(t, `Bearer realm="api"`, resp.header.Get("WWW-Authenticate"))
			})
		}
		for name, header := range map[string]string{
			"BasicScheme": "Basic " + fx.admin.access,
			"NoScheme":    fx.admin.access,
			"EmptyBearer": "Bearer ",
		} {
			t.Run("Rejects"+name, func(t *testing.T) {
				req := httptest.NewRequest("GET", "/api/users/me/", nil)
				req.Header.Set("Authorization", header)
				resp := serveRequest(t, fx.server.Handler(), req, nil)
				require.Equal(t, http.StatusUnauthorized, resp.status)
				require.JSONEq(t, `{"detail": "`+msgNotAuthenticated+`"}`, string(resp.body))
			})
		}
	})
}

func TestEmptySecretKey(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{SecretKey: []byte("k")})
	s := NewServer(Config{BcryptCost: bcrypt.MinCost}, fx.store, fx.events, slog.New(slog.NewTextHandler(fx.logs, nil)))
	require.Contains(t, fx.logs.String(), "jwt secret key is empty")

	resp := doRequest(t, s.Handler(), "POST", "/api/token/", nil, map[string]any{"email": "admin@example.com", "password": testPassword})
	require.Equal(t, http.StatusInternalServerError, resp.status)
	token := signHS(t, jwt.SigningMethodHS256, &tokenClaims{TokenType: tokenTypeAccess,
		RegisteredClaims: jwt.RegisteredClaims{Subject: fx.admin.user.ID, ID: "x",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}})
	resp = doRequest(t, s.Handler(), "GET", "/api/users/me/", &persona{access: token}, nil)
	require.Equal(t, http.StatusUnauthorized, resp.status)
}

package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher"
)

// JWT token types, stored in the token_type claim. An access token is never
// accepted where a refresh token is expected, and the other way round.
const (
	tokenTypeAccess  = "access"
	tokenTypeRefresh = "refresh"
)

// tokenClaims are the claims of the JWTs this API issues: sub is the user
// id and jti a random id, which revocation of refresh tokens keys on.
type tokenClaims struct {
	TokenType string `json:"token_type"`
	jwt.RegisteredClaims
}

// issueToken returns a signed HS256 JWT of tokenType for userID, and its
// claims.
func (s *Server) issueToken(userID, tokenType string) (string, *tokenClaims, error) {
	if len(s.cfg.SecretKey) == 0 {
		return "", nil, errEmptySecretKey
	}
	ttl := s.cfg.AccessTokenTTL
	if tokenType == tokenTypeRefresh {
		ttl = s.cfg.RefreshTokenTTL
	}
	now := s.now()
	claims := &tokenClaims{
		TokenType: tokenType,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        uuid.NewString(),
		},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.SecretKey)
	if err != nil {
		return "", nil, fmt.Errorf("sign %s token: %w", tokenType, err)
	}
	return signed, claims, nil
}

// parseToken verifies a JWT's HS256 signature, expiry and token type and
// returns its claims. Any failure is errTokenNotValid.
func (s *Server) parseToken(signed, tokenType string) (*tokenClaims, error) {
	claims := &tokenClaims{}
	_, err := jwt.ParseWithClaims(signed, claims, func(*jwt.Token) (any, error) {
		if len(s.cfg.SecretKey) == 0 {
			return nil, errEmptySecretKey
		}
		return s.cfg.SecretKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil || claims.TokenType != tokenType || !isUUID(claims.Subject) || claims.ID == "" {
		return nil, errTokenNotValid
	}
	return claims, nil
}

// authenticate returns the user named by the request's bearer access token.
func (s *Server) authenticate(r *http.Request) (*datapusher.User, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, errNotAuthenticated
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, errNotAuthenticated
	}
	claims, err := s.parseToken(strings.TrimSpace(token), tokenTypeAccess)
	if err != nil {
		return nil, err
	}
	user, err := s.store.UserByID(r.Context(), claims.Subject)
	if datapusher.ErrorCode(err) == datapusher.ENOTFOUND {
		return nil, &authError{Detail: "User not found", Code: "user_not_found"}
	} else if err != nil {
		return nil, err
	}
	return user, nil
}

// hashPassword returns the bcrypt hash of password.
func (s *Server) hashPassword(password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

// checkPassword reports whether password matches user's hash. For a nil
// user or one without a password it compares against a dummy hash, so the
// time taken does not reveal which emails exist.
func (s *Server) checkPassword(user *datapusher.User, password string) bool {
	if user == nil || !user.HasPassword() {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(password)) == nil
}

// hashToken returns the SHA-256 hex digest under which the store keeps app
// secret tokens and invitation tokens.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// refreshExpiry returns the expiry of refresh token claims.
func refreshExpiry(claims *tokenClaims) time.Time {
	if claims.ExpiresAt == nil {
		return time.Time{}
	}
	return claims.ExpiresAt.Time
}

// errEmptySecretKey rejects signing and verifying JWTs without a key, which
// would let anyone forge a token.
var errEmptySecretKey = errors.New("jwt secret key is empty")

var (
	errBadCredentials  = &authError{Detail: "No active account found with the given credentials"}
	errRefreshNotValid = &authError{Detail: "Token is invalid or expired", Code: "token_not_valid"}
	errRefreshRevoked  = &authError{Detail: "Token is blacklisted", Code: "token_not_valid"}
)

// isNotFound reports whether err is an ENOTFOUND error.
func isNotFound(err error) bool {
	return datapusher.ErrorCode(err) == datapusher.ENOTFOUND
}

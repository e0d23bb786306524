package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
)

// AdminTokenFile is the name of the generated admin token's file in the data
// dir.
const AdminTokenFile = "admin-token"

// LoadAdminToken returns the admin token: fromEnv when it is set (from
// HARK_ADMIN_TOKEN), else the one saved in dataDir, else a new one, which it
// saves there with mode 0600. generated is true only in that last case, so
// the caller prints the token exactly once.
func LoadAdminToken(dataDir, fromEnv string) (token string, generated bool, err error) {
	if fromEnv = strings.TrimSpace(fromEnv); fromEnv != "" {
		return fromEnv, false, nil
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
		return "", false, fmt.Errorf("admin token file %s is empty; delete it to generate a new token", path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	token = "hark_" + base64.RawURLEncoding.EncodeToString(raw)
	// O_EXCL: two first starts racing must not both think they generated it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("save admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("save admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("save admin token: %w", err)
	}
	return token, true, nil
}

// authInterceptor requires `Authorization: Bearer <admin token>`. It compares
// SHA-256 digests in constant time, so neither the token's length nor its
// bytes leak through timing.
type authInterceptor struct{ want [sha256.Size]byte }

func newAuthInterceptor(token string) authInterceptor {
	return authInterceptor{want: sha256.Sum256([]byte(token))}
}

var errUnauthenticated = connect.NewError(connect.CodeUnauthenticated,
	errors.New("missing or wrong admin token: send 'Authorization: Bearer <token>'"))

func (a authInterceptor) check(header string) error {
	// The scheme is case-insensitive (RFC 9110 §11.1).
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errUnauthenticated
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if subtle.ConstantTimeCompare(sum[:], a.want[:]) != 1 {
		return errUnauthenticated
	}
	return nil
}

func (a authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.check(req.Header().Get("Authorization")); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader().Get("Authorization")); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

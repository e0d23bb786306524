package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// limitIngestBody reads ingest request bodies in full, up to limit, before
// vanguard or Connect see them, and answers 400 when a body is larger.
// Vanguard's own limit answers 429 and Connect's answers resource_exhausted;
// Segment retries both for hours, while an oversize body will never fit.
// A gzip body is decompressed here, under the same limit, so a small
// compressed bomb is refused before anything inflates it further.
func limitIngestBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.HasPrefix(r.URL.Path, engine.IngestPath)
		if !rest && !strings.HasPrefix(r.URL.Path, "/"+harkv1connect.IngestServiceName+"/") {
			next.ServeHTTP(w, r)
			return
		}
		if token, ok := strings.CutPrefix(r.URL.Path, engine.IngestPath); ok && !tokenShape.MatchString(token) {
			// Not a token hark could have issued (and maybe not even text,
			// which the request message could not carry): unknown.
			writeError(w, rest, connect.CodeNotFound, engine.ErrUnknownIngestToken.Error())
			return
		}
		if r.ContentLength > limit {
			writeTooLarge(w, rest, limit)
			return
		}
		var in io.Reader = r.Body
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				writeError(w, rest, connect.CodeInvalidArgument, "the body is not valid gzip: "+err.Error())
				return
			}
			defer zr.Close()
			in = zr
			r.Header.Del("Content-Encoding")
		}
		body, err := io.ReadAll(io.LimitReader(in, limit+1))
		if err != nil {
			writeError(w, rest, connect.CodeInvalidArgument, "read request body: "+err.Error())
			return
		}
		if int64(len(body)) > limit {
			writeTooLarge(w, rest, limit)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
}

// bodyKey carries the body limitIngestBody read, so the direct ingest route
// takes it without another copy.
type bodyKey struct{}

// bodyOf returns the ingest body limitIngestBody read.
func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

// tokenShape is what a webhook token can look like: base64url, at most 128
// characters (hark issues 43).
var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// restInputErrors turns vanguard's own input errors on REST routes into 400.
// Vanguard reports some malformed requests (a value that does not parse into
// its field) with code unknown, which it sends as 500; hark's handlers never
// answer unknown (errors.go maps everything), so on these routes it can only
// mean the request was bad.
func restInputErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&unknownTo400{ResponseWriter: w}, r)
	})
}

type unknownTo400 struct {
	http.ResponseWriter
	held bool // a 500 is held until the body shows its code
}

func (u *unknownTo400) WriteHeader(code int) {
	if code == http.StatusInternalServerError {
		u.held = true
		return
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *unknownTo400) Write(p []byte) (int, error) {
	if u.held {
		u.held = false
		var st struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(p, &st) == nil && st.Code == 2 {
			u.ResponseWriter.WriteHeader(http.StatusBadRequest)
			b, _ := json.Marshal(map[string]any{"code": 3, "message": st.Message})
			return u.ResponseWriter.Write(b)
		}
		u.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	}
	return u.ResponseWriter.Write(p)
}

// Unwrap exposes the real writer to http.ResponseController.
func (u *unknownTo400) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// Flush passes flushes through.
func (u *unknownTo400) Flush() {
	if u.held {
		u.held = false
		u.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	}
	if f, ok := u.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeTooLarge(w http.ResponseWriter, rest bool, limit int64) {
	writeError(w, rest, connect.CodeInvalidArgument, fmt.Sprintf("request body is larger than %d bytes", limit))
}

// writeError answers before vanguard or Connect see the request, in the shape
// the caller expects: the google.rpc.Status that vanguard writes for REST
// routes (writeStatus), or a Connect error; the HTTP status follows the code
// either way (httpStatus).
func writeError(w http.ResponseWriter, rest bool, code connect.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	if rest {
		writeStatus(w, connect.NewError(code, errors.New(msg)))
		return
	}
	w.WriteHeader(httpStatus(code))
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code.String(), "message": msg})
}

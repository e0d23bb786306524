package console

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestPagesMatchRouter keeps Pages (the paths the Go side answers with the
// app) and the client router's pages (src/main.tsx) the same list: a page
// missing here would 404 on reload; one missing there would show the
// sources page for a path the API might want one day.
func TestPagesMatchRouter(t *testing.T) {
	src, err := os.ReadFile("src/main.tsx")
	if err != nil {
		t.Fatal(err)
	}
	var routed []string
	for _, m := range regexp.MustCompile(`case "([a-z-]+)":`).FindAllStringSubmatch(string(src), -1) {
		routed = append(routed, m[1])
	}
	routed = append(routed, "sign-in") // App's, before the router
	want := slices.Clone(Pages)
	slices.Sort(want)
	slices.Sort(routed)
	if !slices.Equal(routed, want) {
		t.Fatalf("src/main.tsx routes %v, Pages is %v", routed, want)
	}
}

func TestServe(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api", http.StatusTeapot) })
	for _, tc := range []struct {
		method, path string
		want         int
		console      bool
	}{
		{"GET", "/", http.StatusOK, true},
		{"HEAD", "/", http.StatusOK, true},
		{"GET", "/sources", http.StatusOK, true},
		{"GET", "/triggers/trg_1", http.StatusOK, true},
		{"GET", "/assets/missing.js", http.StatusNotFound, true},
		{"POST", "/sources", http.StatusTeapot, false},
		{"GET", "/v1/sources", http.StatusTeapot, false},
		{"GET", "/sourcesx", http.StatusTeapot, false},
		{"GET", "/integrations/receive/x", http.StatusTeapot, false},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
		if got := Serves(tc.path) && (tc.method == "GET" || tc.method == "HEAD"); got != tc.console {
			t.Errorf("Serves(%s %s) = %v, want %v", tc.method, tc.path, got, tc.console)
		}
	}
}

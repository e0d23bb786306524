package delivery_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/harkhq/hark/engine/delivery"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://hooks.example.com/hark":       "",
		"http://hooks.example.com:8080/x?t=1":  "",
		"HTTPS://Hooks.Example.com":            "",
		"https://8.8.8.8/hook":                 "",
		"https://[2606:4700::1111]/hook":       "",
		"":                                     "must be an http or https URL",
		"hooks.example.com/x":                  "must be an http or https URL",
		"ftp://example.com/":                   "must be an http or https URL",
		"javascript:alert(1)":                  "must be an http or https URL",
		"http:example.com":                     "must be an http or https URL (scheme://host/path)",
		"https://user:pass@example.com/":       "must not carry credentials (user:password@); put secrets in the destination's settings",
		"https://token@example.com/":           "must not carry credentials (user:password@); put secrets in the destination's settings",
		"https:///path":                        "must have a host",
		"https://:443/path":                    "must have a host",
		"https://example.com:0/":               "has an invalid port",
		"https://example.com:70000/":           "has an invalid port",
		"http://exa mple.com/":                 "is not a URL",
		"https://" + strings.Repeat("a", 2048): "must be at most 2048 characters",
		"http://127.0.0.1:8080/":               "points at a loopback address (127.0.0.1); private destinations need --allow-private-destinations",
		"http://10.1.2.3/":                     "points at a private address (10.1.2.3); private destinations need --allow-private-destinations",
		"http://169.254.169.254/latest/":       "points at a link-local (the cloud metadata address) address (169.254.169.254); private destinations need --allow-private-destinations",
		"http://[::1]/":                        "points at a loopback address (::1); private destinations need --allow-private-destinations",
		"http://[::ffff:192.168.0.1]/":         "points at a private address (::ffff:192.168.0.1); private destinations need --allow-private-destinations",
		"http://[fe80::1%25eth0]/":             "points at a link-local address (fe80::1%eth0); private destinations need --allow-private-destinations",
		"http://100.64.0.1/":                   "points at a CGNAT (shared address space) address (100.64.0.1); private destinations need --allow-private-destinations",
		"http://0.0.0.0:9000/":                 "points at a unspecified address (0.0.0.0); private destinations need --allow-private-destinations",
		"http://localhost:8080/":               "points at localhost; private destinations need --allow-private-destinations",
		"http://api.LOCALHOST./":               "points at localhost; private destinations need --allow-private-destinations",
		"http://localhost.example.com/":        "",
	} {
		err := delivery.ValidateURL(raw, false)
		if want == "" {
			if err != nil {
				t.Errorf("ValidateURL(%q) = %v, want ok", raw, err)
			}
			continue
		}
		var uerr *delivery.URLError
		if !errors.As(err, &uerr) || uerr.Reason != want {
			t.Errorf("ValidateURL(%q) = %v, want %q", raw, err, want)
		}
	}
	// With --allow-private-destinations, private hosts are fine; the rest
	// of the rules still hold.
	for _, raw := range []string{"http://127.0.0.1:8080/", "http://localhost/", "http://10.0.0.1/", "http://[::1]:9/"} {
		if err := delivery.ValidateURL(raw, true); err != nil {
			t.Errorf("ValidateURL(%q, allowPrivate) = %v", raw, err)
		}
	}
	if err := delivery.ValidateURL("https://u:p@127.0.0.1/", true); err == nil {
		t.Error("credentials allowed with allowPrivate")
	}
}

func TestValidateDestination(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		typ, url string
		settings map[string]string
		want     []delivery.FieldViolation
	}{
		"webhook":                  {typ: "webhook", url: "https://hooks.example.com/"},
		"knock with default url":   {typ: "knock", settings: map[string]string{"api_key": "sk_1"}},
		"segment with its own url": {typ: "segment", url: "https://events.eu1.segmentapis.com", settings: map[string]string{"write_key": "wk"}},
		"no type": {want: []delivery.FieldViolation{
			{Field: "type", Description: "is required (one of knock, segment, webhook)"}}},
		"unknown type": {typ: "email", want: []delivery.FieldViolation{
			{Field: "type", Description: `"email" is not a destination type (one of knock, segment, webhook)`}}},
		"webhook without url": {typ: "webhook", want: []delivery.FieldViolation{
			{Field: "url", Description: "is required for webhook destinations"}}},
		"webhook with settings": {typ: "webhook", url: "https://x.example/", settings: map[string]string{"secret": "s"}, want: []delivery.FieldViolation{
			{Field: "settings.secret", Description: "is not a setting: webhook destinations take none"}}},
		"knock without key, private url, stray setting": {typ: "knock", url: "http://192.168.1.1", settings: map[string]string{"write_key": "x", "api_key": " "}, want: []delivery.FieldViolation{
			{Field: "url", Description: "points at a private address (192.168.1.1); private destinations need --allow-private-destinations"},
			{Field: "settings.write_key", Description: "is not a setting of knock destinations (they take api_key)"},
			{Field: "settings.api_key", Description: "is required for knock destinations"}}},
		"segment key too long": {typ: "segment", settings: map[string]string{"write_key": strings.Repeat("k", 5000)}, want: []delivery.FieldViolation{
			{Field: "settings.write_key", Description: "must be at most 4096 bytes"}}},
	} {
		got := delivery.Validate(tc.typ, tc.url, tc.settings, false)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Validate = %v, want %v", name, got, tc.want)
		}
	}
	if got := delivery.Validate("webhook", "http://127.0.0.1:9/", nil, true); len(got) != 0 {
		t.Errorf("Validate with allowPrivate = %v", got)
	}
}

func TestTypeSettings(t *testing.T) {
	t.Parallel()
	if got := delivery.Types(); !slices.Equal(got, []string{"knock", "segment", "webhook"}) {
		t.Fatalf("Types = %v", got)
	}
	for typ, key := range map[string]string{"knock": "api_key", "segment": "write_key"} {
		s, ok := delivery.TypeSettings(typ)
		if !ok || len(s) != 1 || s[0].Key != key || !s[0].Secret || !s[0].Required || s[0].Description == "" {
			t.Fatalf("TypeSettings(%s) = %+v, %v; want one secret, required %s", typ, s, ok, key)
		}
		s[0].Key = "changed"
		if again, _ := delivery.TypeSettings(typ); again[0].Key != key {
			t.Fatal("TypeSettings hands out its own slice")
		}
	}
	if s, ok := delivery.TypeSettings("webhook"); !ok || len(s) != 0 {
		t.Fatalf("TypeSettings(webhook) = %v, %v", s, ok)
	}
	if _, ok := delivery.TypeSettings("email"); ok {
		t.Fatal("TypeSettings(email) ok")
	}
}

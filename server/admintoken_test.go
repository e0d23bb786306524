package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAdminToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// file is the admin-token file's content before the call; nil means
		// no file.
		file    *string
		fromEnv string
		// want is the token wanted; "" with wantErr false means a generated one.
		want          string
		wantGenerated bool
		wantErr       string // a substring of the error, "" for none
		wantFile      *string
	}{
		{
			name: "env value wins over no file", fromEnv: "envtok",
			want: "envtok",
		},
		{
			name: "env value wins over the file", file: fileContent("filetok\n"), fromEnv: "envtok",
			want: "envtok", wantFile: fileContent("filetok\n"),
		},
		{
			name: "env value is trimmed", fromEnv: "  envtok \n",
			want: "envtok",
		},
		{
			name: "blank env value falls back to the file", file: fileContent("filetok\n"), fromEnv: "   ",
			want: "filetok", wantFile: fileContent("filetok\n"),
		},
		{
			name: "file is read and trimmed", file: fileContent("  filetok\n\n"),
			want: "filetok", wantFile: fileContent("  filetok\n\n"),
		},
		{
			name: "empty file is an error", file: fileContent(""),
			wantErr: "empty", wantFile: fileContent(""),
		},
		{
			name: "blank file is an error", file: fileContent(" \n\t\n"),
			wantErr: "empty", wantFile: fileContent(" \n\t\n"),
		},
		{
			name:          "no env value and no file generates one",
			wantGenerated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, AdminTokenFile)
			if tt.file != nil {
				if err := os.WriteFile(path, []byte(*tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			token, generated, err := LoadAdminToken(dir, tt.fromEnv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadAdminToken = %q, %v, %v; want an error containing %q", token, generated, err, tt.wantErr)
				}
				if token != "" {
					t.Errorf("token %q returned with an error", token)
				}
			} else if err != nil {
				t.Fatalf("LoadAdminToken: %v", err)
			}
			if generated != tt.wantGenerated {
				t.Errorf("generated = %v, want %v", generated, tt.wantGenerated)
			}
			if tt.wantErr == "" && !tt.wantGenerated && token != tt.want {
				t.Errorf("token = %q, want %q", token, tt.want)
			}

			b, err := os.ReadFile(path)
			switch {
			case tt.wantGenerated:
				if err != nil {
					t.Fatalf("generated token not saved: %v", err)
				}
			case tt.wantFile == nil:
				if err == nil {
					t.Fatalf("%s was written (%q) though the token came from elsewhere", AdminTokenFile, b)
				}
			case err != nil:
				t.Fatalf("read %s: %v", AdminTokenFile, err)
			case string(b) != *tt.wantFile:
				t.Fatalf("%s changed to %q, want %q", AdminTokenFile, b, *tt.wantFile)
			}
		})
	}
}

func TestLoadAdminTokenGeneratesOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token, generated, err := LoadAdminToken(dir, "")
	if err != nil {
		t.Fatalf("first LoadAdminToken: %v", err)
	}
	if !generated {
		t.Fatal("first LoadAdminToken: generated = false, want true")
	}
	// 32 random bytes, base64url: well over the 128 bits a bearer secret needs.
	if !strings.HasPrefix(token, "hark_") || len(token) < len("hark_")+43 || strings.ContainsAny(token, " \t\r\n") {
		t.Fatalf("generated token %q, want hark_ followed by at least 43 base64url characters", token)
	}

	path := filepath.Join(dir, AdminTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("%s mode = %o, want 600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != token {
		t.Fatalf("%s holds %q, want the generated token %q", path, b, token)
	}

	again, generated, err := LoadAdminToken(dir, "")
	if err != nil {
		t.Fatalf("second LoadAdminToken: %v", err)
	}
	if generated || again != token {
		t.Fatalf("second LoadAdminToken = %q, generated %v; want %q, false", again, generated, token)
	}

	// Another data dir gets another token.
	other, _, err := LoadAdminToken(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if other == token {
		t.Fatalf("two data dirs generated the same token %q", token)
	}
}

func TestLoadAdminTokenMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "does", "not", "exist")
	if token, _, err := LoadAdminToken(dir, ""); err == nil {
		t.Fatalf("LoadAdminToken in a missing dir = %q, want an error", token)
	}
}

func fileContent(s string) *string { return &s }

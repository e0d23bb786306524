package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/harkhq/hark/engine/delivery"
)

// TestListen runs `hark listen` and posts it deliveries: a signed one is
// answered 204 and printed, one signed with another secret 401.
func TestListen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := delivery.NewSecret()
	cmd := exec.Command(harkBin, "listen", "--secret", secret, "--listen", addr)
	cmd.Env = serveEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	post := func(signWith string) int {
		body := []byte(`{"type":"workflow_run.created","timestamp":"2026-12-02T10:00:00Z","data":{"id":"run_1","workflowKey":"welcome","recipients":["u1","u2"]}}`)
		now := time.Now()
		sig, err := delivery.Sign("dlv_1", now, body, signWith)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
		req.Header.Set(delivery.HeaderID, "dlv_1")
		req.Header.Set(delivery.HeaderTimestamp, fmt.Sprint(now.Unix()))
		req.Header.Set(delivery.HeaderSignature, sig)
		for deadline := time.Now().Add(procTimeout); ; {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
				return res.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatalf("hark listen does not answer: %v; stderr:\n%s", err, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
			req.Body = nopBody(body)
		}
	}
	if got := post(secret); got != http.StatusNoContent {
		t.Fatalf("a signed delivery: HTTP %d, want 204", got)
	}
	select {
	case line := <-lines:
		if want := "workflow_run.created run_1 workflow=welcome recipients=u1,u2 webhook-id=dlv_1"; line != want {
			t.Fatalf("printed %q, want %q", line, want)
		}
	case <-time.After(procTimeout):
		t.Fatal("hark listen printed nothing")
	}
	if got := post(delivery.NewSecret()); got != http.StatusUnauthorized {
		t.Fatalf("a delivery signed with another secret: HTTP %d, want 401", got)
	}
}

func nopBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

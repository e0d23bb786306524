package natsstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/harkhq/hark/engine/natsstore"
)

// TestConnectNoJetStream starts a real nats-server without JetStream in-process: Connect
// refuses it with ErrNoJetStream and says how to fix it.
func TestConnectNoJetStream(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = natsstore.Connect(ctx, natsstore.Options{URLs: []string{s.ClientURL()}})
	if !errors.Is(err, natsstore.ErrNoJetStream) {
		t.Fatalf("Connect: %v, want ErrNoJetStream", err)
	}
	want := "JetStream is not enabled on " + s.ClientURL() + ": start nats-server with -js"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
}

// TestConnectServerTooOld: no nats-server older than 2.12 can be embedded here (the module
// is 2.15), so a minimal fake speaks the first steps of the NATS protocol on loopback: an INFO
// that reports version 2.10.7, then PONG to the client's PING. Connect reads the version from
// that INFO, as it would from a real old server, and refuses with *ServerTooOldError.
func TestConnectServerTooOld(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go fakeOldServer(conn, port)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	_, err = natsstore.Connect(ctx, natsstore.Options{URLs: []string{url}})
	var old *natsstore.ServerTooOldError
	if !errors.As(err, &old) {
		t.Fatalf("Connect: %v, want a *ServerTooOldError", err)
	}
	want := "nats-server 2.10.7 at " + url + ": hark needs 2.12 or newer (atomic batch publish, per-message TTL)"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// fakeOldServer answers one client as a nats-server 2.10.7 would until the client hangs up.
func fakeOldServer(conn net.Conn, port int) {
	defer conn.Close()
	fmt.Fprintf(conn, "INFO {\"server_id\":\"FAKE\",\"server_name\":\"old\",\"version\":\"2.10.7\",\"proto\":1,\"go\":\"go1.21\",\"host\":\"127.0.0.1\",\"port\":%d,\"headers\":true,\"max_payload\":1048576,\"jetstream\":true}\r\n", port)
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "PING") {
			fmt.Fprint(conn, "PONG\r\n")
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"one", "nats://h1:4222", []string{"nats://h1:4222"}},
		{"scheme once", "nats://h1:4222,h2:4223", []string{"nats://h1:4222", "nats://h2:4223"}},
		{"scheme each", "nats://h1:4222,nats://h2:4223", []string{"nats://h1:4222", "nats://h2:4223"}},
		{"default port", "nats://a,b,c", []string{"nats://a:4222", "nats://b:4222", "nats://c:4222"}},
		{"tls", "tls://a:4443", []string{"tls://a:4443"}},
		{"spaces", "nats://a:1, b:2", []string{"nats://a:1", "nats://b:2"}},
		{"credentials kept", "nats://u:p@a:1", []string{"nats://u:p@a:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := natsstore.ParseURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("ParseURL(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "badger", "http://a:1", "nats://", "nats://a,,b", "nats://a:99999", "nats://a:1/path", "nats://a,http://b"} {
		if got, err := natsstore.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) = %v, want an error", bad, got)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one ```sh block of README.md and how the test runs it,
// from the marker comment on the line before it:
//
//	<!-- readme-test: background -->          a server: runs in the background until the next
//	                                           background block (which stops it with SIGINT,
//	                                           as Ctrl-C would) or the end
//	<!-- readme-test: beside, wait for ADDR --> runs in the background beside the server (a
//	                                           receiver), until the end; the next block waits
//	                                           until ADDR accepts connections
//	<!-- readme-test: interrupt after 2s -->  runs until interrupted, as a reader would Ctrl-C it
//	<!-- readme-test: skip: reason -->         not run, for the reason given
//
// Any other block runs in the foreground and must succeed.
type readmeBlock struct {
	line int    // of the opening fence, for messages
	mode string // "", "background", "beside", "interrupt", "skip"
	wait time.Duration
	why  string
	addr string // beside: what to wait for
	text string
}

var readmeMarker = regexp.MustCompile(`^<!-- readme-test: (background|beside, wait for (\S+)|interrupt after (\d+)s|skip: (.+)) -->$`)

// readmeBlocks reads the sh blocks of a README, in order. Blocks inside list
// items are indented; the indentation of their fence is removed.
func readmeBlocks(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	var (
		out    []readmeBlock
		cur    *readmeBlock
		indent string
		prev   string
	)
	for i, line := range strings.Split(readme, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```sh":
			cur = &readmeBlock{line: i + 1}
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
			if m := readmeMarker.FindStringSubmatch(prev); m != nil {
				switch {
				case m[1] == "background":
					cur.mode = "background"
				case m[2] != "":
					cur.mode, cur.addr = "beside", m[2]
				case m[3] != "":
					n, _ := strconv.Atoi(m[3])
					cur.mode, cur.wait = "interrupt", time.Duration(n)*time.Second
				default:
					cur.mode, cur.why = "skip", m[4]
				}
			} else if strings.HasPrefix(prev, "<!-- readme-test") {
				t.Fatalf("README.md:%d: marker %q is not one the test knows", i, prev)
			}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(line, indent) + "\n"
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a sh block is not closed", cur.line)
	}
	return out
}

// copyRepo copies the repository at root into dir, without what git
// ignores or keeps for itself, so the README runs in a checkout of its own
// as a newcomer's would, and leaves nothing behind in this one.
func copyRepo(t *testing.T, root, dir string) {
	t.Helper()
	skip := map[string]bool{".git": true, ".cache": true, "hark-data": true, "bin": true, "node_modules": true, "hark": true, "hark-bench": true}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel != "." && skip[strings.Split(rel, string(filepath.Separator))[0]] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		info, err := in.Stat()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy the repository: %v", err)
	}
}

// readmeScript turns the blocks into one bash script, run in order in one
// shell as a reader pastes them, so variables carry from block to block.
// The README's 127.0.0.1:8080 becomes addr: tests must not need that port.
func readmeScript(blocks []readmeBlock, addr string) string {
	var b strings.Builder
	b.WriteString(`set -euo pipefail
set -m  # background blocks get process groups of their own, to be interrupted whole
__bg=()
__stop_bg() {
  for p in "${__bg[@]}"; do
    kill -INT -- "-$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  __bg=()
}
trap __stop_bg EXIT
trap 'echo "README block $__block failed (exit $?)" >&2' ERR
__wait_up() {
  for _ in $(seq 1 1200); do
    if curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$HARK_SERVER/grpc.health.v1.Health/Check" | grep -q 'SERVING_STATUS_SERVING'; then
      return 0
    fi
    sleep 0.5
  done
  echo "the server of README block $__block did not come up" >&2
  return 1
}
__wait_port() {
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on $1 for README block $__block" >&2
  return 1
}
`)
	for i, blk := range blocks {
		text := strings.ReplaceAll(blk.text, "127.0.0.1:8080", addr)
		fmt.Fprintf(&b, "\n__block='%d (README.md line %d)'\necho \"== README block $__block\"\n", i+1, blk.line)
		switch blk.mode {
		case "skip":
			fmt.Fprintf(&b, "echo '   skipped: %s'\n", strings.ReplaceAll(blk.why, "'", ""))
		case "background":
			fmt.Fprintf(&b, "__stop_bg\n(\n%s) > \"server-%d.log\" 2>&1 &\n__bg+=($!)\n__wait_up || { cat \"server-%d.log\" >&2; exit 1; }\n", text, i+1, i+1)
		case "beside":
			fmt.Fprintf(&b, "(\n%s) > \"beside-%d.log\" 2>&1 &\n__bg+=($!)\n__wait_port %q || { cat \"beside-%d.log\" >&2; exit 1; }\n", text, i+1, blk.addr, i+1)
		case "interrupt":
			fmt.Fprintf(&b, "(\n%s) &\n__p=$!\nsleep %d\nkill -INT -- \"-$__p\" 2>/dev/null || true\n__rc=0; wait \"$__p\" || __rc=$?\n"+
				"if [ \"$__rc\" != 0 ] && [ \"$__rc\" != 130 ]; then echo \"README block $__block exited $__rc\" >&2; exit 1; fi\n",
				text, int(blk.wait.Seconds()))
		default:
			b.WriteString(text)
		}
	}
	b.WriteString("\necho '== README: every block ran'\n")
	return b.String()
}

// TestREADME runs every shell block of README.md, in order, in a copy of
// the repository with a fresh data dir, as a newcomer pasting them would:
// the server blocks start `go run ./cmd/hark serve` in the background, the
// others must succeed (their curl calls fail on HTTP errors and their jq
// checks on wrong answers). The only changes to what is pasted are the port
// (a free one instead of 8080) and a smaller --min-free-disk, so the test
// does not depend on the machine's port or disk.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's walkthroughs, which build and start hark: not with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's blocks need %s, which is not installed", tool)
		}
	}
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme))
	if len(blocks) < 10 {
		t.Fatalf("README.md has %d sh blocks; the parser is probably wrong", len(blocks))
	}
	dir := t.TempDir()
	copyRepo(t, root, dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", readmeScript(blocks, addr))
	cmd.Dir = dir
	cmd.Env = append(serveEnv(), "HARK_LISTEN="+addr, "HARK_SERVER=http://"+addr)
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's blocks fail when pasted in order: %v\n%s", err, lastLines(out, 200))
	}
	t.Logf("%s", lastLines(out, 3))
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

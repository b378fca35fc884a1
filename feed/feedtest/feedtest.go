// Package feedtest starts a real nats-server with JetStream for the change
// feed's tests: the binary scripts/test-nats installs (go install, from the
// Go module proxy) and names in CHWATCHTEST_NATS_SERVER.
package feedtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// EnvServer names the nats-server binary.
const EnvServer = "CHWATCHTEST_NATS_SERVER"

// NATSServer starts nats-server with JetStream on a loopback port, its
// store in a temporary directory, stopped when tb ends, and returns its
// URL. It skips tb when EnvServer is not set.
func NATSServer(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(EnvServer)
	if bin == "" {
		tb.Skip(EnvServer + " is not set: scripts/test-nats installs nats-server v2.15.2 and runs the NATS tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := tb.TempDir()
	logPath := filepath.Join(dir, "nats-server.log")
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", filepath.Join(dir, "js"), "-l", logPath)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return url
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			tb.Fatalf("nats-server did not come up at %s: %v\n%s", url, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

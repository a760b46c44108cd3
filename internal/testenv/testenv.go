package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run on CI, where every part must be there.
func CI() bool { return os.Getenv("CI") == "true" }

// Need stops the test when err says the part what is missing: a failure
// on CI, a skip elsewhere. A nil err lets the test go on.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("required on CI but missing: %s: %v", what, err)
	}
	t.Skipf("skipping, missing: %s: %v", what, err)
}

// Program returns the path of the program name, which the package pkg
// installs, or stops the test as Need does.
func Program(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, name+" (apt-get install "+pkg+")", err)
	return p
}

// FUSE stops the test, as Need does, unless the machine can mount FUSE
// file systems as this user: /dev/fuse and fusermount3.
func FUSE(t testing.TB) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	Need(t, "/dev/fuse", err)
	Program(t, "fusermount3", "fuse3")
}

// FreeAddr is a loopback host:port (127.0.0.1) free at the time of the
// call, for a server to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return closedPort(t, "127.0.0.1")
}

// ClosedAddr is a loopback host:port where nothing listens, on 127.0.0.3:
// loopback test servers listen on 127.0.0.1, where the kernel may hand a
// port just closed to the next one started, while an agent may remember
// what it found at the closed one.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	return closedPort(t, "127.0.0.3")
}

// closedPort is host with a port the kernel handed out and that is closed
// again.
func closedPort(t testing.TB, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

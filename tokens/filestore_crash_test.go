package tokens

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestFileStoreCrashKeepsAcknowledgedPuts runs two writer processes on one
// secrets file; each prints a key once its Put returned. One is killed
// with SIGKILL in the middle of its writes. Every printed key must be in
// the file afterwards, and the file must keep taking writes.
func TestFileStoreCrashKeepsAcknowledgedPuts(t *testing.T) {
	if dir := os.Getenv("FILESTORE_CRASH_CHILD"); dir != "" {
		crashChild(dir, os.Getenv("FILESTORE_CRASH_NAME"))
		return
	}
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	// The key is created up front so the children share it.
	if err := openFile(t, o).Put(ctx, "seed", []byte("seed")); err != nil {
		t.Fatal(err)
	}
	type child struct {
		cmd   *exec.Cmd
		acked []string
		done  chan struct{}
	}
	start := func(name string) *child {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreCrashKeepsAcknowledgedPuts$")
		cmd.Env = append(os.Environ(), "FILESTORE_CRASH_CHILD="+o.StateDir, "FILESTORE_CRASH_NAME="+name,
			"FILESTORE_CRASH_CONFIG="+o.ConfigDir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &child{cmd: cmd, done: make(chan struct{})}
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if k, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
					c.acked = append(c.acked, k)
				}
			}
		}()
		return c
	}
	victim, survivor := start("victim"), start("survivor")
	// Kill the victim once it has acknowledged some puts (polling with a
	// deadline; its output is read by the goroutine above).
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n, _ := countLines(o.StateDir); n >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.cmd.Process.Kill()
	victim.cmd.Wait()
	<-victim.done
	<-survivor.done
	if err := survivor.cmd.Wait(); err != nil {
		t.Fatalf("the surviving writer failed: %v", err)
	}
	if len(victim.acked) == 0 || len(survivor.acked) != crashPuts {
		t.Fatalf("acknowledged: victim %d, survivor %d of %d", len(victim.acked), len(survivor.acked), crashPuts)
	}
	f := openFile(t, o)
	for _, k := range append(victim.acked, survivor.acked...) {
		if v, err := f.Get(ctx, k); err != nil || string(v) != k {
			t.Fatalf("acknowledged %s is %q, %v after the crash", k, v, err)
		}
	}
	if err := f.Put(ctx, "after", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if v, err := openFile(t, o).Get(ctx, "after"); err != nil || string(v) != "after" {
		t.Fatalf("write after the crash: %q, %v", v, err)
	}
}

const crashPuts = 300

// countLines counts the victim's acknowledged puts through the progress
// file it keeps next to the state directory.
func countLines(stateDir string) (int, error) {
	b, err := os.ReadFile(stateDir + ".victim-progress")
	return strings.Count(string(b), "\n"), err
}

func crashChild(stateDir, name string) {
	ctx := context.Background()
	f, err := OpenFileStore(ctx, FileOptions{StateDir: stateDir, ConfigDir: os.Getenv("FILESTORE_CRASH_CONFIG")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	progress, _ := os.OpenFile(stateDir+"."+name+"-progress", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	n := crashPuts
	if name == "victim" {
		n = 1_000_000 // until killed
	}
	for i := range n {
		k := fmt.Sprintf("%s/%d", name, i)
		if err := f.Put(ctx, k, []byte(k)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("acked %s\n", k)
		fmt.Fprintln(progress, k)
		// Every tenth write also overwrites a large secret, so the log
		// compacts under the other writer too.
		if i%10 == 0 {
			if err := f.Put(ctx, name+"/hot", bytes.Repeat([]byte{byte(i)}, 16<<10)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	}
	os.Exit(0)
}

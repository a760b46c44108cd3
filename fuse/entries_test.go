package ocmfs

import (
	"errors"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// A share whose server the agent has not reached (no URL yet) is shown; its
// reads fail with EHOSTUNREACH, without a network; once its URL is given,
// it is read.
func TestUnresolvedShareShownThenRead(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/ro/a.txt", []byte("alpha"))
	e.srv.write("/shares/f.txt", []byte("file share"))
	folder, file := e.folder("s1", "Folder", "/shares/ro", false), e.file("s2", "f.txt", "/shares/f.txt", false)
	folder.URL, file.URL = "", ""
	e.fs.SetEntries([]Entry{folder, file})
	if got := joined(listNames(t, e.mnt)); got != "Folder|f.txt" {
		t.Fatalf("root = %q", got)
	}
	if st, err := os.Stat(e.path("Folder")); err != nil || !st.IsDir() {
		t.Fatalf("unresolved folder share: %v, %v", st, err)
	}
	if _, err := os.ReadDir(e.path("Folder")); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("listing an unresolved share: %v, want EHOSTUNREACH", err)
	}
	if _, err := os.ReadFile(e.path("f.txt")); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("reading an unresolved file share: %v, want EHOSTUNREACH", err)
	}
	if n := len(e.srv.log()); n != 0 {
		t.Errorf("%d requests for shares without a URL", n)
	}
	// The same entries again: nothing changes.
	e.fs.SetEntries([]Entry{folder, file})
	e.fs.SetEntries([]Entry{e.folder("s1", "Folder", "/shares/ro", false), e.file("s2", "f.txt", "/shares/f.txt", false)})
	eventually(t, 10*time.Second, "the folder share listed", func() bool {
		ents, err := os.ReadDir(e.path("Folder"))
		return err == nil && len(ents) == 1 && ents[0].Name() == "a.txt"
	})
	eventually(t, 10*time.Second, "the file share read", func() bool {
		b, err := os.ReadFile(e.path("f.txt"))
		return err == nil && string(b) == "file share"
	})
}

// While a lookup at the root waits on a slow server (and the kernel holds
// the root's lock for it), SetEntries does not wait for it: it returns and
// the kernel is told when the lookup ends. The old SetEntries waited for the
// lookup, which held up the agent (and its lock) for up to Timeout.
func TestSetEntriesDuringSlowRootLookup(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Timeout = 10 * time.Second })
	e.srv.write("/shares/slow/a.txt", []byte("a"))
	e.srv.write("/shares/other/b.txt", []byte("b"))
	// The first check of the share fails at once, so that the next one is
	// started by the lookup itself.
	e.srv.set(func(s *davServer) {
		s.refuse["PROPFIND /shares/slow"] = true
		s.refuse["HEAD /shares/slow"] = true
	})
	slow := e.folder("s1", "Slow", "/shares/slow", false)
	e.fs.SetEntries([]Entry{slow})
	sh := e.fs.shareByID("s1")
	eventually(t, 10*time.Second, "the first check failing and its backoff passing", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return sh.lastErr != nil && sh.resolving == nil && time.Since(sh.lastTry) > resolveBackoff
	})
	hang := make(chan struct{})
	arrived := make(chan struct{}, 1)
	e.srv.set(func(s *davServer) {
		s.refuse = map[string]bool{}
		s.hang = hang
		s.onRequest = func(r *http.Request) {
			if r.Method == "PROPFIND" {
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		}
	})
	released := false
	defer func() {
		if !released {
			close(hang)
		}
	}()
	statDone := make(chan error, 1)
	go func() {
		_, err := os.Stat(e.path("Slow"))
		statDone <- err
	}()
	select {
	case <-arrived: // the lookup waits on the server now
	case <-time.After(10 * time.Second):
		t.Fatal("the lookup did not ask the server")
	}
	start := time.Now()
	e.fs.SetEntries([]Entry{slow, e.folder("s2", "Other", "/shares/other", false)})
	took := time.Since(start)
	t.Logf("SetEntries took %v during a slow lookup", took)
	if took > 5*time.Second {
		t.Errorf("SetEntries took %v: it waited for the slow lookup", took)
	}
	e.srv.set(func(s *davServer) { s.hang = nil; s.onRequest = nil })
	close(hang)
	released = true
	if err := <-statDone; err != nil {
		t.Logf("stat of the slow share: %v", err)
	}
	eventually(t, 15*time.Second, "the new share in the mount", func() bool {
		ents, err := os.ReadDir(e.path("Other"))
		return err == nil && len(ents) == 1
	})
}

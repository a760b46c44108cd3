package ocmfs

import (
	"net/http"
	"strings"
)

// shareRefused passes a refusal on to Options.OnShareRefused. A 403 or
// 404 below the root is an ordinary missing or protected file.
func (f *FS) shareRefused(shareID, url string, status int) {
	if f.o.OnShareRefused == nil {
		return
	}
	f.mu.Lock()
	sh := f.shares[shareID]
	f.mu.Unlock()
	if sh == nil {
		return
	}
	if status != http.StatusUnauthorized {
		_, cur, _ := sh.state()
		u := strings.TrimSuffix(url, "/")
		if u != strings.TrimSuffix(sh.entry.URL, "/") && u != strings.TrimSuffix(cur, "/") {
			return
		}
	}
	f.log.Warn("the sender no longer serves the share", "share", shareID, "status", status)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.o.OnShareRefused(shareID, status)
	}()
}

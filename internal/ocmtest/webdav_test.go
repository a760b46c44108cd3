package ocmtest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func register(t *testing.T, s *Server, req ShareRequest) *Share {
	t.Helper()
	if req.To == "" {
		req.To = "bob@127.0.0.1:9"
	}
	sh, err := s.RegisterShare(req)
	if err != nil {
		t.Fatalf("RegisterShare: %v", err)
	}
	return sh
}

func TestWebDAVBearerSecretOpensFolder(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder"})
	root := s.URL() + sh.WebDAVPath()

	st, _, body := do(t, s, "PROPFIND", root+"/", bearer(sh.Secret), nil, map[string]string{"Depth": "1"})
	if st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND: %d %s", st, body)
	}
	for _, want := range []string{"hello.txt", "sub/"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("PROPFIND depth 1 does not list %s:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "deep.txt") {
		t.Errorf("PROPFIND depth 1 went deeper than one level:\n%s", body)
	}
	st, _, body = do(t, s, http.MethodGet, root+"/hello.txt", bearer(sh.Secret), nil, nil)
	if st != http.StatusOK || string(body) != "hello, world\n" {
		t.Fatalf("GET: %d %q", st, body)
	}
	st, _, body = do(t, s, http.MethodGet, root+"/sub/deep.txt", bearer(sh.Secret), nil, nil)
	if st != http.StatusOK || string(body) != "deep\n" {
		t.Fatalf("GET in a sub-folder: %d %q", st, body)
	}
}

func TestWebDAVPropfindDepth0(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder"})
	st, _, body := do(t, s, "PROPFIND", s.URL()+sh.WebDAVPath()+"/", bearer(sh.Secret), nil, map[string]string{"Depth": "0"})
	if st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND: %d %s", st, body)
	}
	if strings.Contains(string(body), "hello.txt") || !strings.Contains(string(body), "<D:collection") {
		t.Fatalf("PROPFIND depth 0 should describe only the folder itself:\n%s", body)
	}
}

func TestWebDAVWrongCredentialsAre401(t *testing.T) {
	s := newPeer(t, Options{})
	a := register(t, s, ShareRequest{Path: "folder"})
	b := register(t, s, ShareRequest{Path: "file.txt"})
	url := s.URL() + a.WebDAVPath() + "/hello.txt"
	for name, auth := range map[string]string{
		"none":            "",
		"wrong secret":    bearer("not-the-secret"),
		"other share":     bearer(b.Secret),
		"basic not on":    basic(a.Secret),
		"unknown scheme":  "Digest " + a.Secret,
		"basic malformed": "Basic %%%",
	} {
		st, hdr, _ := do(t, s, http.MethodGet, url, auth, nil, nil)
		if st != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, st)
		}
		if hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate on 401", name)
		}
	}
}

func TestWebDAVBasicAuthPerShare(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", BasicAuth: true})
	url := s.URL() + sh.WebDAVPath() + "/hello.txt"
	if st, _, body := do(t, s, http.MethodGet, url, basic(sh.Secret), nil, nil); st != http.StatusOK || string(body) != "hello, world\n" {
		t.Fatalf("Basic secret: %d %q", st, body)
	}
	if st, _, _ := do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil); st != http.StatusOK {
		t.Fatalf("Bearer secret on a share that also allows Basic: %d", st)
	}
}

func TestWebDAVMustExchangeTokenAcceptsOnlyTokens(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", MustExchangeToken: true, BasicAuth: true})
	url := s.URL() + sh.WebDAVPath() + "/hello.txt"
	if st, _, _ := do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("raw secret as bearer on a must-exchange-token share: %d, want 401", st)
	}
	if st, _, _ := do(t, s, http.MethodGet, url, basic(sh.Secret), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("raw secret as Basic on a must-exchange-token share: %d, want 401", st)
	}
	tok := exchange(t, s, sh.To.Host, sh.Secret)
	if st, _, body := do(t, s, http.MethodGet, url, bearer(tok), nil, nil); st != http.StatusOK || string(body) != "hello, world\n" {
		t.Fatalf("exchanged token: %d %q", st, body)
	}
	other := register(t, s, ShareRequest{Path: "file.txt"})
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+other.WebDAVPath(), bearer(tok), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("token of one share used on another: %d, want 401", st)
	}
}

func TestWebDAVReadOnlyRefusesWrites(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder"})
	root := s.URL() + sh.WebDAVPath()
	auth := bearer(sh.Secret)
	for _, c := range []struct {
		method, path string
		hdr          map[string]string
		body         string
	}{
		{http.MethodPut, "/hello.txt", nil, "overwritten"},
		{http.MethodPut, "/new.txt", nil, "new"},
		{"MKCOL", "/newdir", nil, ""},
		{"MOVE", "/hello.txt", map[string]string{"Destination": root + "/moved.txt"}, ""},
		{"COPY", "/hello.txt", map[string]string{"Destination": root + "/copy.txt"}, ""},
		{http.MethodDelete, "/hello.txt", nil, ""},
		{"PROPPATCH", "/hello.txt", nil, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>`},
		{"LOCK", "/locked.txt", nil, ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		if st, _, _ := do(t, s, c.method, root+c.path, auth, body, c.hdr); st != http.StatusForbidden {
			t.Errorf("%s %s on a read-only share: %d, want 403", c.method, c.path, st)
		}
	}
	got, err := os.ReadFile(filepath.Join(s.Dir(), "folder", "hello.txt"))
	if err != nil || string(got) != "hello, world\n" {
		t.Fatalf("file changed by refused writes: %q %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "folder"))
	if len(entries) != 2 {
		t.Fatalf("refused writes created entries: %v", entries)
	}
}

func TestWebDAVWritableShare(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", Permissions: []string{"read", "write"}})
	root := s.URL() + sh.WebDAVPath()
	auth := bearer(sh.Secret)
	steps := []struct {
		method, path string
		hdr          map[string]string
		body         string
		want         int
	}{
		{http.MethodPut, "/new.txt", nil, "fresh", http.StatusCreated},
		{"MKCOL", "/made", nil, "", http.StatusCreated},
		{"MOVE", "/new.txt", map[string]string{"Destination": root + "/made/moved.txt"}, "", http.StatusCreated},
		{http.MethodDelete, "/sub", nil, "", http.StatusNoContent},
	}
	for _, c := range steps {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		if st, _, b := do(t, s, c.method, root+c.path, auth, body, c.hdr); st != c.want {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, st, b, c.want)
		}
	}
	got, err := os.ReadFile(filepath.Join(s.Dir(), "folder", "made", "moved.txt"))
	if err != nil || string(got) != "fresh" {
		t.Fatalf("after PUT+MKCOL+MOVE: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "folder", "sub")); !os.IsNotExist(err) {
		t.Fatalf("DELETE left the folder: %v", err)
	}
}

func TestWebDAVRange(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt"})
	st, hdr, body := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(sh.Secret), nil, map[string]string{"Range": "bytes=2-5"})
	if st != http.StatusPartialContent || string(body) != "2345" {
		t.Fatalf("Range: %d %q", st, body)
	}
	if cr := hdr.Get("Content-Range"); cr != "bytes 2-5/20" {
		t.Fatalf("Content-Range %q", cr)
	}
}

func TestWebDAVFileShare(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt"})
	url := s.URL() + sh.WebDAVPath()
	if st, _, body := do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil); st != http.StatusOK || string(body) != "0123456789abcdefghij" {
		t.Fatalf("GET file share: %d %q", st, body)
	}
	if st, hdr, _ := do(t, s, http.MethodHead, url, bearer(sh.Secret), nil, nil); st != http.StatusOK || hdr.Get("Content-Length") != "20" {
		t.Fatalf("HEAD file share: %d length %q", st, hdr.Get("Content-Length"))
	}
	st, _, body := do(t, s, "PROPFIND", url, bearer(sh.Secret), nil, map[string]string{"Depth": "0"})
	if st != http.StatusMultiStatus || !strings.Contains(string(body), "<D:getcontentlength>20<") {
		t.Fatalf("PROPFIND file share: %d %s", st, body)
	}
}

func TestWebDAVNoPropfindOnFiles(t *testing.T) {
	s := newPeer(t, Options{NoPropfindOnFiles: true})
	file := register(t, s, ShareRequest{Path: "file.txt"})
	folder := register(t, s, ShareRequest{Path: "folder"})
	if st, _, _ := do(t, s, "PROPFIND", s.URL()+file.WebDAVPath(), bearer(file.Secret), nil, map[string]string{"Depth": "0"}); st != http.StatusMethodNotAllowed {
		t.Fatalf("PROPFIND on a file share: %d, want 405", st)
	}
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+file.WebDAVPath(), bearer(file.Secret), nil, nil); st != http.StatusOK {
		t.Fatalf("GET on a file share: %d", st)
	}
	if st, _, _ := do(t, s, "PROPFIND", s.URL()+folder.WebDAVPath()+"/", bearer(folder.Secret), nil, map[string]string{"Depth": "1"}); st != http.StatusMultiStatus {
		t.Fatalf("PROPFIND on a folder share: %d", st)
	}
}

func TestWebDAVLegacyShareAtRoot(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", Dialect: DialectNextcloud})
	st, _, body := do(t, s, "PROPFIND", s.WebDAVURL(), basic(sh.Secret), nil, map[string]string{"Depth": "1"})
	if st != http.StatusMultiStatus || !strings.Contains(string(body), "hello.txt") {
		t.Fatalf("PROPFIND at the WebDAV root with Basic: %d %s", st, body)
	}
	if st, _, body := do(t, s, http.MethodGet, s.WebDAVURL()+"hello.txt", basic(sh.Secret), nil, nil); st != http.StatusOK || string(body) != "hello, world\n" {
		t.Fatalf("GET under the root: %d %q", st, body)
	}
	if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+"hello.txt", bearer(sh.Secret), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("Nextcloud shares take Basic only; Bearer got %d", st)
	}
	modern := register(t, s, ShareRequest{Path: "folder"})
	if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+"hello.txt", bearer(modern.Secret), nil, nil); st != http.StatusNotFound {
		t.Fatalf("a share with a uri is not served at the root: %d, want 404", st)
	}
}

func TestWebDAVExpiredAndRevokedShares(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder"})
	url := s.URL() + sh.WebDAVPath() + "/hello.txt"
	if st, _, _ := do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil); st != http.StatusOK {
		t.Fatalf("before revocation: %d", st)
	}
	if !s.RevokeShare(sh.ID) {
		t.Fatal("RevokeShare found no share")
	}
	if st, _, _ := do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("after revocation: %d, want 401", st)
	}
}

func TestWebDAVStats(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt", Permissions: []string{"read", "write"}})
	url := s.URL() + sh.WebDAVPath()
	do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, nil)
	do(t, s, http.MethodGet, url, bearer(sh.Secret), nil, map[string]string{"Range": "bytes=0-3"})
	do(t, s, http.MethodPut, url, bearer(sh.Secret), []byte("0123456789abcdefghij"), nil)
	st := s.WebDAVStats()
	if g := st[http.MethodGet]; g.Requests != 2 || g.BytesOut != 24 {
		t.Errorf("GET stats %+v, want 2 requests and 24 bytes", g)
	}
	if p := st[http.MethodPut]; p.Requests != 1 || p.BytesIn != 20 {
		t.Errorf("PUT stats %+v, want 1 request and 20 bytes in", p)
	}
	if n := s.Hits(WebDAVRoot); n != 3 {
		t.Errorf("Hits(%s) = %d, want 3", WebDAVRoot, n)
	}
	s.ResetStats()
	if len(s.WebDAVStats()) != 0 || s.Hits("") != 0 {
		t.Error("ResetStats left counts")
	}
}

package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nginxServer is nginx serving dataDir over WebDAV on 127.0.0.1, accepting
// only "Authorization: Bearer <token>" (and Basic with the token as password,
// for davfs2, which cannot send a bearer token).
type nginxServer struct {
	prefix  string
	dataDir string
	port    int
	cmd     *exec.Cmd
	logPath string
}

const davExtModule = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"

func startNginx(prefix, dataDir, token, basicUser string) (*nginxServer, error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return nil, fmt.Errorf("nginx not installed (nginx-light): %w", err)
	}
	if _, err := os.Stat(davExtModule); err != nil {
		return nil, fmt.Errorf("nginx dav-ext module missing (libnginx-mod-http-dav-ext): %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, d := range []string{"logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o700); err != nil {
			return nil, err
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	basic := base64.StdEncoding.EncodeToString([]byte(basicUser + ":" + token))
	conf := fmt.Sprintf(`load_module %s;
%s
worker_processes 2;
daemon off;
pid %[3]s/nginx.pid;
error_log %[3]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '$request_method $status $body_bytes_sent $request_length "$http_range" $request_uri';
  access_log %[3]s/logs/access.log bench;
  client_body_temp_path %[3]s/tmp/body;
  proxy_temp_path %[3]s/tmp/proxy;
  fastcgi_temp_path %[3]s/tmp/fastcgi;
  uwsgi_temp_path %[3]s/tmp/uwsgi;
  scgi_temp_path %[3]s/tmp/scgi;
  client_max_body_size 0;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  map_hash_bucket_size 128;
  map $http_authorization $bench_auth {
    "Bearer %[4]s" 1;
    "Basic %[5]s" 1;
    default 0;
  }
  server {
    listen 127.0.0.1:%[6]d;
    root %[7]s;
    error_page 401 /.bench-401;
    location = /.bench-401 {
      internal;
      add_header WWW-Authenticate 'Basic realm="bench"' always;
      return 401;
    }
    location / {
      if ($bench_auth = 0) { return 401; }
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      dav_access user:rw group:r all:r;
      create_full_put_path on;
    }
  }
}
`, davExtModule, user, prefix, token, basic, port, dataDir)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-p", prefix, "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &nginxServer{prefix: prefix, dataDir: dataDir, port: port, cmd: cmd, logPath: filepath.Join(prefix, "logs", "access.log")}
	for range 100 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("nginx did not start (see %s/logs/error.log)", prefix)
}

func (s *nginxServer) url(p string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, p)
}

func (s *nginxServer) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	}
}

// logMark is a position in the access log.
func (s *nginxServer) logMark() int64 {
	st, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logStats sums the requests logged since mark: count and body bytes sent,
// per method. nginx writes its log lines as requests end.
func (s *nginxServer) logStats(mark int64) map[string][2]int64 {
	out := map[string][2]int64{}
	f, err := os.Open(s.logPath)
	if err != nil {
		return out
	}
	defer f.Close()
	if _, err := f.Seek(mark, 0); err != nil {
		return out
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		sent, _ := strconv.ParseInt(fields[2], 10, 64)
		v := out[fields[0]]
		v[0]++
		v[1] += sent
		out[fields[0]] = v
	}
	return out
}

package packaging

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// PackagesDirEnv names a directory holding packages already built by
// 'make packages' (both ocm-agent and ocm-agent-tray); the tray package is
// checked only from there, since building it needs cgo and takes minutes.
const PackagesDirEnv = "OCM_AGENT_PACKAGES_DIR"

func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	testenv.Need(t, name+" (apt-get install "+pkg+")", err)
	return p
}

// repoRoot is the module's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// desktopEntry reads the [Desktop Entry] group of a .desktop file.
func desktopEntry(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	group := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			group = line
		case group == "[Desktop Entry]":
			k, v, _ := strings.Cut(line, "=")
			m[k] = v
		}
	}
	return m
}

// TestDesktopFiles validates the menu entry, the autostart entry and the
// ocm: link handler with desktop-file-validate, and checks what each one
// is for.
func TestDesktopFiles(t *testing.T) {
	validate := tool(t, "desktop-file-validate", "desktop-file-utils")
	dir := filepath.Join(repoRoot(t), "packaging", "desktop")
	files, _ := filepath.Glob(filepath.Join(dir, "*.desktop"))
	if len(files) != 3 {
		t.Fatalf("want 3 desktop files, found %v", files)
	}
	for _, f := range files {
		if out, err := run(t, dir, nil, validate, f); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("desktop-file-validate %s: %v\n%s", filepath.Base(f), err, out)
		}
	}
	app := desktopEntry(t, filepath.Join(dir, "ocm-agent-tray.desktop"))
	if app["Exec"] != "ocm-agent-tray" || app["Icon"] != "ocm-agent" || app["NoDisplay"] == "true" {
		t.Errorf("menu entry: %v", app)
	}
	auto := desktopEntry(t, filepath.Join(dir, "ocm-agent-tray-autostart.desktop"))
	if auto["Exec"] != "ocm-agent-tray" || auto["X-GNOME-Autostart-enabled"] != "true" || auto["NoDisplay"] != "true" {
		t.Errorf("autostart entry: %v", auto)
	}
	inv := desktopEntry(t, filepath.Join(dir, "ocm-agent-invite-handler.desktop"))
	if inv["MimeType"] != "x-scheme-handler/ocm;" || inv["Exec"] != "ocm-agent-tray --accept-invite %u" || inv["NoDisplay"] != "true" {
		t.Errorf("invite handler: %v", inv)
	}
	// The icon the entries name exists in the icon set.
	icon := filepath.Join(repoRoot(t), "packaging", "icons", "hicolor", "scalable", "apps", app["Icon"]+".svg")
	if _, err := os.Stat(icon); err != nil {
		t.Errorf("the entries name the icon %q: %v", app["Icon"], err)
	}
}

// TestMetainfo validates the AppStream metadata and its links to the
// desktop entry and the icon.
func TestMetainfo(t *testing.T) {
	asc := tool(t, "appstreamcli", "appstream")
	root := repoRoot(t)
	path := filepath.Join(root, "packaging", "desktop", "io.github.ocm_agent.ocm_agent.metainfo.xml")
	out, err := run(t, root, nil, asc, "validate", "--no-net", "--pedantic", path)
	if err != nil {
		t.Fatalf("appstreamcli validate: %v\n%s", err, out)
	}
	// Pedantic notes are allowed except the ones that mean broken links.
	if strings.Contains(out, "E:") || strings.Contains(out, "W:") {
		t.Errorf("appstreamcli reports errors or warnings:\n%s", out)
	}
	var meta struct {
		ID         string   `xml:"id"`
		Launchable string   `xml:"launchable"`
		Icon       string   `xml:"icon"`
		Mediatypes []string `xml:"provides>mediatype"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.ID+".metainfo.xml" != filepath.Base(path) {
		t.Errorf("the file name does not match the component id %q", meta.ID)
	}
	if _, err := os.Stat(filepath.Join(root, "packaging", "desktop", meta.Launchable)); err != nil {
		t.Errorf("launchable %q: %v", meta.Launchable, err)
	}
	if meta.Icon != "ocm-agent" || len(meta.Mediatypes) != 1 || meta.Mediatypes[0] != "x-scheme-handler/ocm" {
		t.Errorf("metainfo: %+v", meta)
	}
}

// TestSystemdUnit checks the user unit with systemd-analyze and keeps out
// the sandboxing options that would break the FUSE mount (see the unit's
// comments).
func TestSystemdUnit(t *testing.T) {
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "packaging", "systemd", "ocm-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		directives[k] = v
	}
	for k, v := range map[string]string{
		"Type": "notify", "ExecStart": "/usr/bin/ocm-agent serve", "Restart": "on-failure",
		"WantedBy": "default.target", "StartLimitBurst": "5", "StartLimitIntervalSec": "300", "UMask": "0077",
	} {
		if directives[k] != v {
			t.Errorf("%s=%q, want %q", k, directives[k], v)
		}
	}
	for _, bad := range []string{"NoNewPrivileges", "PrivateDevices", "DevicePolicy", "ProtectSystem", "ProtectHome",
		"PrivateTmp", "PrivateUsers", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "ProtectKernelTunables",
		"ProtectControlGroups", "ProtectProc", "SystemCallFilter", "SystemCallArchitectures", "LockPersonality",
		"MemoryDenyWriteExecute", "RestrictNamespaces", "RestrictSUIDSGID", "RestrictAddressFamilies", "RestrictRealtime",
		"ProtectClock", "ProtectHostname", "ProtectKernelModules", "ProtectKernelLogs", "StateDirectory", "RuntimeDirectory",
		"User", "DynamicUser"} {
		if _, ok := directives[bad]; ok {
			t.Errorf("%s= must not be set in the user unit: it breaks the FUSE mount or paths the agent computes itself", bad)
		}
	}

	analyze := tool(t, "systemd-analyze", "systemd")
	// systemd-analyze verify checks that ExecStart is an executable, so
	// the copy points at a real binary; a user manager's runtime
	// directory is a temporary one.
	dir := t.TempDir()
	bin := filepath.Join(dir, "ocm-agent")
	if out, err := run(t, filepath.Join(root, "cmd", "ocm-agent"), []string{"CGO_ENABLED=0"}, "go", "build", "-o", bin, "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyPath := filepath.Join(dir, "ocm-agent.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(unit, []byte("/usr/bin/ocm-agent"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := filepath.Join(dir, "run")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, []string{"XDG_RUNTIME_DIR=" + rt}, analyze, "verify", "--user", "--man=no", copyPath)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// buildPackages runs scripts/packages.sh for the given packages into a
// temporary directory.
func buildPackages(t *testing.T, pkgs ...string) string {
	t.Helper()
	root := repoRoot(t)
	dist := t.TempDir()
	out, err := run(t, root, []string{"DIST=" + dist, "FORMATS=deb rpm", "VERSION=v1.2.3-4-gabcdef0"}, filepath.Join(root, "scripts", "packages.sh"), pkgs...)
	if err != nil {
		t.Fatalf("scripts/packages.sh %v: %v\n%s", pkgs, err, out)
	}
	return dist
}

func findPackage(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("want one %s in %s, found %v", pattern, dir, m)
	}
	return m[0]
}

// lint runs lintian and fails on any error; overridden tags and warnings
// are logged.
func lint(t *testing.T, deb string) {
	t.Helper()
	lintian := tool(t, "lintian", "lintian")
	out, err := run(t, "", nil, lintian, "--fail-on", "error", "--show-overrides", deb)
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian error: %s", line)
		}
	}
	// Exit status 2 also comes with warnings only; errors are judged by
	// the E: lines above.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		t.Errorf("lintian: %v", err)
	}
}

// dpkgRoot installs debs into a fresh dpkg database under a temporary
// root (no chroot needed) and returns the root.
func dpkgRoot(t *testing.T, debs ...string) string {
	t.Helper()
	dpkg := tool(t, "dpkg", "dpkg")
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--root=" + root, "--log=/dev/null", "--force-depends", "--force-not-root", "--force-script-chrootless", "-i"}, debs...)
	if out, err := run(t, "", nil, dpkg, args...); err != nil {
		t.Fatalf("dpkg -i into %s: %v\n%s", root, err, out)
	}
	return root
}

func control(t *testing.T, deb string) map[string]string {
	t.Helper()
	out, err := run(t, "", nil, tool(t, "dpkg-deb", "dpkg"), "-f", deb)
	if err != nil {
		t.Fatalf("dpkg-deb -f: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			m[k] = v
		}
	}
	return m
}

func mustExist(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("not installed: /%s (%v)", p, err)
		}
	}
}

// checkDaemonPackage installs the ocm-agent .deb into a scratch root and
// checks what lands where.
func checkDaemonPackage(t *testing.T, dist string) {
	deb := findPackage(t, dist, "ocm-agent_*.deb")
	lint(t, deb)
	c := control(t, deb)
	if c["Package"] != "ocm-agent" || !strings.Contains(c["Depends"], "fuse3") || !strings.Contains(c["Recommends"], "gnome-keyring") {
		t.Errorf("control: %v", c)
	}
	for _, gfx := range []string{"libgl", "libx11", "fyne"} {
		if strings.Contains(strings.ToLower(c["Depends"]+c["Recommends"]), gfx) {
			t.Errorf("the headless package depends on %s: %v", gfx, c)
		}
	}

	root := dpkgRoot(t, deb)
	mustExist(t, root,
		"usr/bin/ocm-agent",
		"usr/lib/systemd/user/ocm-agent.service",
		"usr/share/man/man1/ocm-agent.1.gz",
		"usr/share/man/man1/ocm-agent-serve.1.gz",
		"usr/share/man/man1/ocm-agent-doctor.1.gz",
		"usr/share/man/man1/ocm-agent-init.1.gz",
		"usr/share/man/man5/ocm-agent.toml.5.gz",
		"usr/share/bash-completion/completions/ocm-agent",
		"usr/share/zsh/vendor-completions/_ocm-agent",
		"usr/share/fish/vendor_completions.d/ocm-agent.fish",
		"usr/share/doc/ocm-agent/config.toml.example",
		"usr/share/doc/ocm-agent/copyright",
		"usr/share/doc/ocm-agent/changelog.Debian.gz",
	)
	for _, p := range []string{"usr/bin/ocm-agent-tray", "usr/share/applications", "etc/xdg/autostart", "usr/share/man/man1/ocm-agent-tray.1.gz"} {
		if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("/%s belongs to the tray package, not to ocm-agent", p)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "usr/bin/ocm-agent"))
	if err == nil && fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/ocm-agent has mode %v", fi.Mode().Perm())
	}
	out, err := run(t, "", nil, tool(t, "dpkg", "dpkg"), "--root="+root, "-s", "ocm-agent")
	if err != nil || !strings.Contains(out, "Status: install ok installed") {
		t.Errorf("dpkg -s ocm-agent: %v\n%s", err, out)
	}

	// The installed program runs, and a man page is installed for each of
	// its commands (the installed binary lists them).
	bin := filepath.Join(root, "usr/bin/ocm-agent")
	out, err = run(t, "", nil, bin, "version")
	if err != nil || !strings.Contains(out, "v1.2.3-4-gabcdef0") {
		t.Errorf("installed ocm-agent version: %v %q", err, out)
	}
	gen := t.TempDir()
	if out, err := run(t, "", nil, bin, "gendocs", "--man", gen); err != nil {
		t.Fatalf("gendocs: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(gen, "*.1"))
	for _, p := range pages {
		name := filepath.Base(p)
		if name == "ocm-agent-tray.1" {
			continue
		}
		mustExist(t, root, "usr/share/man/man1/"+name+".gz")
	}
	if man, err := exec.LookPath("man"); err == nil {
		out, err := run(t, "", []string{"MANWIDTH=80", "LC_ALL=C"}, man, "-l", filepath.Join(root, "usr/share/man/man5/ocm-agent.toml.5.gz"))
		if err != nil || !strings.Contains(out, "public-url") {
			t.Errorf("man -l ocm-agent.toml.5: %v\n%s", err, out)
		}
	}

	// The .rpm is there, is an RPM, and is named for the same version.
	rpm := findPackage(t, dist, "ocm-agent-1.2.3+4.gabcdef0-1.*.rpm")
	b, err := os.ReadFile(rpm)
	if err != nil || len(b) < 4 || !bytes.Equal(b[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Errorf("%s is not an RPM package", rpm)
	}
	if rpmBin, err := exec.LookPath("rpm"); err == nil {
		out, err := run(t, "", nil, rpmBin, "-qlp", rpm)
		if err != nil || !strings.Contains(out, "/usr/lib/systemd/user/ocm-agent.service") || !strings.Contains(out, "/usr/share/zsh/site-functions/_ocm-agent") {
			t.Errorf("rpm -qlp: %v\n%s", err, out)
		}
	}
}

// TestDaemonPackage builds the ocm-agent packages with nfpm, lints the
// .deb, installs it into a scratch dpkg root and checks the files.
func TestDaemonPackage(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	tool(t, "readelf", "binutils")
	checkDaemonPackage(t, buildPackages(t, "ocm-agent"))
}

// TestTrayPackage checks both packages as 'make packages' built them
// (scripts/check-packages.sh runs it with PackagesDirEnv set):
// lintian, dependencies (GL and X only in the tray package), and the
// files of both installed together.
func TestTrayPackage(t *testing.T) {
	dist := os.Getenv(PackagesDirEnv)
	if dist == "" {
		// Not a missing part of the machine: CI runs this test through
		// scripts/check-packages.sh after 'make packages', which sets it.
		t.Skipf("set %s to the dist/ directory of 'make packages' (scripts/check-packages.sh does)", PackagesDirEnv)
	}
	agentDeb := findPackage(t, dist, "ocm-agent_*.deb")
	trayDeb := findPackage(t, dist, "ocm-agent-tray_*.deb")
	lint(t, trayDeb)
	c := control(t, trayDeb)
	agentVersion := control(t, agentDeb)["Version"]
	for _, want := range []string{"ocm-agent (= " + agentVersion + ")", "libc6", "libgl1", "libx11-6"} {
		if !strings.Contains(c["Depends"], want) {
			t.Errorf("ocm-agent-tray Depends lacks %q: %q", want, c["Depends"])
		}
	}
	root := dpkgRoot(t, agentDeb, trayDeb)
	mustExist(t, root,
		"usr/bin/ocm-agent", "usr/bin/ocm-agent-tray",
		"usr/share/applications/ocm-agent-tray.desktop",
		"usr/share/applications/ocm-agent-invite-handler.desktop",
		"etc/xdg/autostart/ocm-agent-tray.desktop",
		"usr/share/metainfo/io.github.ocm_agent.ocm_agent.metainfo.xml",
		"usr/share/icons/hicolor/scalable/apps/ocm-agent.svg",
		"usr/share/icons/hicolor/48x48/apps/ocm-agent.png",
		"usr/share/man/man1/ocm-agent-tray.1.gz",
		"usr/share/doc/ocm-agent-tray/copyright",
	)
	if rpmBin, err := exec.LookPath("rpm"); err == nil {
		rpm := findPackage(t, dist, "ocm-agent-tray-[0-9]*.rpm")
		out, err := run(t, "", nil, rpmBin, "-qpR", rpm)
		if err != nil || !strings.Contains(out, "ocm-agent = ") || !strings.Contains(out, "libGL.so.1()(64bit)") || !strings.Contains(out, "libX11.so.6()(64bit)") {
			t.Errorf("rpm -qpR %s: %v\n%s", filepath.Base(rpm), err, out)
		}
	}
	// The installed desktop entries and metadata still validate.
	validate := tool(t, "desktop-file-validate", "desktop-file-utils")
	entries, _ := filepath.Glob(filepath.Join(root, "usr/share/applications/*.desktop"))
	entries = append(entries, filepath.Join(root, "etc/xdg/autostart/ocm-agent-tray.desktop"))
	for _, e := range entries {
		if out, err := run(t, "", nil, validate, e); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("desktop-file-validate %s: %v\n%s", e, err, out)
		}
	}
	// The tray's options are the ones its man page documents.
	out, _ := run(t, "", nil, filepath.Join(root, "usr/bin/ocm-agent-tray"), "--help")
	flags := regexp.MustCompile(`(?m)^\s+-([a-z-]+)`).FindAllStringSubmatch(out, -1)
	if len(flags) == 0 {
		t.Fatalf("ocm-agent-tray --help lists no options:\n%s", out)
	}
	page, err := run(t, "", []string{"MANWIDTH=200", "LC_ALL=C"}, tool(t, "man", "man-db"), "-l", filepath.Join(root, "usr/share/man/man1/ocm-agent-tray.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, f := range flags {
		if !strings.Contains(page, "--"+f[1]) {
			missing = append(missing, f[1])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("ocm-agent-tray(1) does not document: %v", missing)
	}
}

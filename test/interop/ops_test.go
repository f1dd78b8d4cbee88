package interop

// Running it for real (issue 18): the store checked at start, -check-config,
// MESSAGE to the service identity, registrations in the log, the systemd
// unit and the fail2ban filter in contrib/.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callbackd/callbackd/internal/store/sqlite"
)

// nobody is the unprivileged user the store tests run the server as when
// the tests run as root (as in CI): root ignores mode bits, so a file
// chmod 0444 would not be read-only to it. Run as nobody, the file's mode
// and owner are the real condition a service user meets.
const nobody = 65534

// opsDir makes a folder every user may enter (t.TempDir's parents are
// 0700), with a copy of the binary nobody may run.
func opsDir(t *testing.T) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "callbackd-ops-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "callbackd")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// opsConfig writes a config in dir with listeners on free loopback ports,
// the store at storePath and more TOML; readable by all (nobody reads it).
func opsConfig(t *testing.T, dir, storePath, extra string) string {
	t.Helper()
	port := freePort(t)
	cfg := fmt.Sprintf(`[sip]
listen = ["udp:127.0.0.1:%d", "tcp:127.0.0.1:%d"]
[http]
listen = "127.0.0.1:%d"
token = "`+apiToken+`"
[store]
path = %q
%s`, port, port, freePort(t), storePath, extra)
	path := filepath.Join(dir, "callbackd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runOnce runs the binary with args in dir, as nobody when root, until it
// exits (10 s at most: a server that starts is a failure here, killed).
func runOnce(t *testing.T, dir, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not exit within 10 s (it started?)\nstderr:\n%s", args, errb.String())
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// readOnlyFor makes path impossible for the server's user to write: owned
// by root, mode 0444 (0555 for a folder), the server run as nobody; when
// the tests do not run as root, the mode alone does it.
func readOnlyFor(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, 0, 0); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// ownedByServer gives path to the user the server runs as (nobody when
// root), so that only what the test takes away is missing.
func ownedByServer(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
}

// oneClearLine checks that the server refused to start: exit 1, nothing
// served, and one line on stderr that says what, where and why.
func oneClearLine(t *testing.T, stderr string, code int, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || len(lines) != 1 {
		t.Fatalf("exit %d with %d lines, want exit 1 and one line:\n%s", code, len(lines), stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("the line %q does not say %q", lines[0], w)
		}
	}
	if strings.Contains(stderr, "started") || strings.Contains(stderr, "(14)") || strings.Contains(stderr, "(8)") {
		t.Errorf("the line is not the clear one: %q", lines[0])
	}
}

// A database file the server's user cannot write (read-only to it) is
// refused at start, with one line naming the file and "permission denied",
// instead of "started" and 500 to every REGISTER.
func TestOps_ReadOnlyStoreRefusesToStart(t *testing.T) {
	dir, bin := opsDir(t)
	data := filepath.Join(dir, "data")
	db := filepath.Join(data, "callbackd.db")
	st, err := sqlite.Open(db) // a real database, as a previous run left it
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	ownedByServer(t, data)
	readOnlyFor(t, db, 0o444)
	cfg := opsConfig(t, dir, "data/callbackd.db", "")

	_, stderr, code := runOnce(t, dir, bin, "-config", cfg)
	oneClearLine(t, stderr, code, "callbackd: store: cannot open for writing "+db+": permission denied")

	// -check-config says the same, and exits 1.
	_, stderr, code = runOnce(t, dir, bin, "-check-config", "-config", cfg)
	oneClearLine(t, stderr, code, cfg+": [store] path:", db+": permission denied")
}

// A folder the server's user cannot write to (no new file: SQLite's WAL
// needs two beside the database) or cannot enter is refused likewise.
func TestOps_StoreFolderWithoutPermissionRefusesToStart(t *testing.T) {
	for _, c := range []struct {
		name string
		mode os.FileMode
		want string
	}{
		{"read-only folder", 0o555, "cannot create files in folder %s: permission denied"},
		{"closed folder", 0o700, "cannot open for writing %s/callbackd.db: permission denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, bin := opsDir(t)
			data := filepath.Join(dir, "data")
			if err := os.Mkdir(data, 0o755); err != nil {
				t.Fatal(err)
			}
			readOnlyFor(t, data, c.mode)
			if os.Geteuid() != 0 && c.mode == 0o700 {
				t.Skip("a folder the tests' own user owns is open to it")
			}
			cfg := opsConfig(t, dir, "data/callbackd.db", "")
			_, stderr, code := runOnce(t, dir, bin, "-config", cfg)
			oneClearLine(t, stderr, code, "callbackd: store: "+fmt.Sprintf(c.want, data))
			if ents, _ := os.ReadDir(data); len(ents) != 0 && c.mode == 0o555 {
				t.Errorf("left %v in the folder", ents)
			}
		})
	}
}

// -check-config: "ok" and exit 0 for a good configuration (the embedded
// defaults too), creating nothing and binding nothing (it runs beside a
// server on the same ports); the problems with file:line and exit 1
// otherwise, TLS files included.
func TestOps_CheckConfig(t *testing.T) {
	s := startServer(t, "")
	run := func(dir string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	if out, errs, code := run(s.Dir, "-check-config", "-config", s.Config); out != "ok\n" || errs != "" || code != 0 {
		t.Errorf("beside the running server: stdout %q stderr %q exit %d, want ok and 0", out, errs, code)
	}
	empty := t.TempDir()
	if out, errs, code := run(empty, "-check-config"); out != "ok\n" || errs != "" || code != 0 {
		t.Errorf("embedded defaults: stdout %q stderr %q exit %d", out, errs, code)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("-check-config created %v", ents)
	}

	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[sip]\nrealm = \"x\"\n\n[callback]\nt3 = \"soon\"\n"), 0o600)
	out, errs, code := run(empty, "-check-config", "-config", bad)
	if code != 1 || out != "" || !strings.Contains(errs, bad+":5:") || !strings.Contains(errs, "callback.t3") {
		t.Errorf("bad value: stdout %q stderr %q exit %d, want %s:5: ... callback.t3 and exit 1", out, errs, code, bad)
	}

	tls := filepath.Join(t.TempDir(), "tls.toml")
	os.WriteFile(tls, []byte(fmt.Sprintf("[sip]\nlisten = [\"tls:127.0.0.1:%d\"]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n", freePort(t))), 0o600)
	out, errs, code = run(empty, "-check-config", "-config", tls)
	if code != 1 || out != "" || !strings.Contains(errs, tls+":") || !strings.Contains(errs, "/nonexistent/cert.pem") {
		t.Errorf("missing TLS files: stdout %q stderr %q exit %d", out, errs, code)
	}
	if strings.Contains(s.Log(), "level=ERROR") {
		t.Errorf("the running server logged an error:\n%s", s.Log())
	}
}

// B7, RFC 3428: a MESSAGE out of a dialog to the identity the screens
// come from (a delivery report, a reply) gets 200 and is ignored, without
// a challenge; to a line 405 (Allow without MESSAGE), to no one 404; the
// server's Allow lists MESSAGE. Nothing is acted on: no INFO line.
func TestB7_MessageToServiceIdentityAcceptedAndIgnored(t *testing.T) {
	s := startServer(t, demoLines)
	ports := callPorts(t, 2)
	s.register(t, "1001", ports[0])
	s.waitLog("msg=registered dn=1001 ", 5*time.Second) // logged after the 200: not the MESSAGE's
	mark := len(s.Log())
	r := s.sipp(t, "ops_message.xml", 15*time.Second, "-set", "caller", "1001", "-set", "other", "1002", "-p", fmt.Sprint(ports[1]), "-m", "1")
	if r.Code != 0 {
		t.Fatalf("sipp exit %d\n%s", r.Code, r.Output)
	}
	s.waitLog(`msg="MESSAGE to the service identity ignored" from=1001`, 5*time.Second)
	for _, line := range strings.Split(s.Log()[mark:], "\n") {
		if strings.Contains(line, "level=INFO") || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a MESSAGE made the server log above debug: %s", line)
		}
	}
	if n := strings.Count(s.Log()[mark:], "MESSAGE to the service identity ignored"); n != 2 {
		t.Errorf("%d debug lines for the two MESSAGEs, want 2", n)
	}
	if strings.Contains(s.Log()[mark:], "<imdn") || strings.Contains(s.Log()[mark:], "ok thanks") {
		t.Error("the log shows a MESSAGE's body")
	}
}

// A new binding is logged at INFO with what an operator needs; a refresh
// of the same Contact at DEBUG.
func TestF37_RegistrationLoggedAtInfo(t *testing.T) {
	s := startServer(t, demoLines)
	port := callPorts(t, 1)[0]
	s.register(t, "1001", port)
	first := s.waitLog("msg=registered dn=1001 ", 5*time.Second)
	for _, w := range []string{"level=INFO", fmt.Sprintf(`contact="sip:1001@127.0.0.1:%d;transport=UDP"`, port), fmt.Sprintf("source=127.0.0.1:%d", port), "transport=UDP", "expires=300", "refresh=false"} {
		if !strings.Contains(first, w) {
			t.Errorf("first registration %q: no %s", first, w)
		}
	}
	s.register(t, "1001", port)
	again := s.waitLog("msg=registered dn=1001 ", 5*time.Second)
	if !strings.Contains(again, "level=DEBUG") || !strings.Contains(again, "refresh=true") {
		t.Errorf("refresh logged as %q, want DEBUG and refresh=true", again)
	}
}

// contrib/fail2ban's filter matches the throttle's line as the server
// writes it, in both log formats, with the attacker's address as the
// host, and no other line the server wrote meanwhile.
func TestB7_Fail2banFilterMatchesRealLines(t *testing.T) {
	conf, err := os.ReadFile("../../contrib/fail2ban/filter.d/callbackd.conf")
	if err != nil {
		t.Fatal(err)
	}
	failregex := fail2banList(t, string(conf), "failregex")
	if len(failregex) != 2 {
		t.Fatalf("failregex has %d lines, want 2 (text, json)", len(failregex))
	}
	datepattern := fail2banList(t, string(conf), "datepattern")
	var res, dates []*regexp.Regexp
	for _, r := range failregex {
		// fail2ban's <HOST>; the date is cut from the line first.
		res = append(res, regexp.MustCompile(strings.ReplaceAll(r, "<HOST>", `(?P<host>[0-9A-Fa-f.:]+)`)))
	}
	for _, d := range datepattern {
		d = strings.NewReplacer("{^LN-BEG}", "^", "%%Y", `\d{4}`, "%%m", `\d\d`, "%%d", `\d\d`, "%%H", `\d\d`,
			"%%M", `\d\d`, "%%S", `\d\d`, "%%f", `\d+`, "%%z", `[+-]\d\d:?\d\d`).Replace(d)
		dates = append(dates, regexp.MustCompile(d))
	}

	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			s := &server{t: t, Dir: t.TempDir(), SIPPort: freePort(t)}
			s.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			s.Config = filepath.Join(s.Dir, "callbackd.toml")
			os.WriteFile(s.Config, []byte(fmt.Sprintf("[sip]\nlisten = [\"udp:127.0.0.1:%d\", \"tcp:127.0.0.1:%d\"]\n[http]\nlisten = %q\n[store]\npath = \"data/callbackd.db\"\n[log]\nformat = %q\n%s",
				s.SIPPort, s.SIPPort, s.HTTP, format, demoLines)), 0o600)
			ready := map[string]string{"text": `msg="SIP listening" addr=tcp`, "json": `"msg":"SIP listening","addr":"tcp`}[format]
			startLogged(s, ready)
			t.Cleanup(s.stop)
			port := callPorts(t, 1)[0]
			r := s.sipp(t, "register_wrong_password.xml", 10*time.Second, "-s", "1001", "-au", "1001", "-ap", "wrong", "-p", fmt.Sprint(port), "-m", "1")
			if r.Code != 0 {
				t.Fatalf("sipp exit %d\n%s", r.Code, r.Output)
			}
			s.waitLog("authentication failed", 5*time.Second)
			matched := 0
			sc := bufio.NewScanner(strings.NewReader(s.Log()))
			for sc.Scan() {
				line := sc.Text()
				rest := line // fail2ban cuts the date out before failregex
				for _, d := range dates {
					if loc := d.FindStringIndex(line); loc != nil {
						rest = line[loc[1]:]
						break
					}
				}
				host := ""
				for _, re := range res {
					if m := re.FindStringSubmatch(rest); m != nil {
						host = m[re.SubexpIndex("host")]
					}
				}
				failure := strings.Contains(line, "authentication failed")
				switch {
				case failure && host != "127.0.0.1":
					t.Errorf("the filter does not find the source in %q (after the date: %q)", line, rest)
				case !failure && host != "":
					t.Errorf("the filter matches %q", line)
				case failure:
					matched++
				}
			}
			if matched == 0 {
				t.Errorf("no throttle line in the log:\n%s", s.Log())
			}
			// fail2ban itself, where installed (not in CI).
			f2b, err := exec.LookPath("fail2ban-regex")
			if err != nil {
				return
			}
			logFile := filepath.Join(t.TempDir(), "callbackd.log")
			os.WriteFile(logFile, []byte(s.Log()), 0o600)
			out, err := exec.Command(f2b, logFile, "../../contrib/fail2ban/filter.d/callbackd.conf").CombinedOutput()
			lines := strings.Count(s.Log(), "\n")
			want := fmt.Sprintf("Lines: %d lines, 0 ignored, %d matched, %d missed", lines, matched, lines-matched)
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("fail2ban-regex: %v, want %q:\n%s", err, want, out)
			}
		})
	}
}

// startLogged starts s, ready at a log line of its own format.
func startLogged(s *server, ready string) {
	s.t.Helper()
	s.cmd = exec.Command(binary, "-config", s.Config)
	s.cmd.Dir = s.Dir
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.lines = make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			select {
			case s.lines <- sc.Text():
			default:
			}
		}
		close(s.lines)
	}()
	s.waitLog(ready, 10*time.Second)
}

// fail2banList returns the lines of a multi-line key of a fail2ban .conf
// (the first on "key = ", continuations indented).
func fail2banList(t *testing.T, conf, key string) []string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(conf, "\n") {
		switch {
		case strings.HasPrefix(line, key+" ="):
			in = true
			out = append(out, strings.TrimSpace(strings.TrimPrefix(line, key+" =")))
		case in && strings.HasPrefix(line, " ") && strings.TrimSpace(line) != "":
			out = append(out, strings.TrimSpace(line))
		default:
			in = false
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s in the filter", key)
	}
	return out
}

// contrib/systemd's unit runs only flags the binary has, and, where
// systemd-analyze is installed, verifies without a warning.
func TestOps_SystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../contrib/systemd/callbackd.service")
	if err != nil {
		t.Fatal(err)
	}
	help, _ := exec.Command(binary, "-help").CombinedOutput()
	var execs int
	for _, line := range strings.Split(string(unit), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || (k != "ExecStart" && k != "ExecStartPre") {
			continue
		}
		execs++
		f := strings.Fields(v)
		if f[0] != "/usr/local/bin/callbackd" {
			t.Errorf("%s runs %s", k, f[0])
		}
		for _, a := range f[1:] {
			if strings.HasPrefix(a, "-") && !strings.Contains(string(help), "\n  "+a+"\n") && !strings.Contains(string(help), "\n  "+a+" ") {
				t.Errorf("%s uses %s, which callbackd -help does not list:\n%s", k, a, help)
			}
		}
	}
	if execs != 2 {
		t.Errorf("%d ExecStart/ExecStartPre lines, want 2", execs)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=callbackd", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit has no %q", want)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "callbackd.service")
	os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/callbackd"), []byte(binary)), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// -backup copies the store of a running server (WAL mode, its checkpoints
// running): the copy holds the registration made just before, and the
// server keeps writing. The sqlite3 CLI's ".backup", which
// docs/deployment.md gives too, likewise where installed.
func TestOps_BackupWhileRunning(t *testing.T) {
	s := startServer(t, demoLines)
	port := callPorts(t, 1)[0]
	s.register(t, "1001", port)
	dest := filepath.Join(t.TempDir(), "backup.db")
	cmd := exec.Command(binary, "-backup", dest, "-config", s.Config)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "written to "+dest) {
		t.Fatalf("-backup: %v\n%s", err, out)
	}
	check := func(path string) {
		t.Helper()
		st, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		regs, err := st.Registrations(context.Background())
		if err != nil || len(regs) != 1 || regs[0].DN != "1001" || regs[0].Source != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("%s holds %+v (%v), want the registration of 1001", path, regs, err)
		}
	}
	check(dest)
	again := exec.Command(binary, "-backup", dest, "-config", s.Config)
	again.Dir = s.Dir
	if out, err := again.CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("-backup over an existing file: %v %s", err, out)
	}
	s.register(t, "1002", callPorts(t, 1)[0]) // the server still writes
	s.waitLog("msg=registered dn=1002 ", 5*time.Second)

	if sqlite3, err := exec.LookPath("sqlite3"); err == nil {
		cli := filepath.Join(t.TempDir(), "cli.db")
		c := exec.Command(sqlite3, "data/callbackd.db", ".backup '"+cli+"'")
		c.Dir = s.Dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sqlite3 .backup: %v\n%s", err, out)
		}
		st, err := sqlite.Open(cli)
		if err != nil {
			t.Fatal(err)
		}
		regs, _ := st.Registrations(context.Background())
		st.Close()
		if len(regs) != 2 {
			t.Errorf("sqlite3 .backup holds %d registrations, want 2", len(regs))
		}
	}
}

// Every shell snippet in README.md and docs/ pastes: bash reads it, and a
// command that goes on over lines says so with a backslash; no command is
// an inline code span broken over two lines (the README's curl was). The
// README's auto-recall curl is run against a server and does its work.
func TestOps_DocShellSnippetsPasteable(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	command := regexp.MustCompile("^(curl|go|sipp|baresip|sqlite3|systemctl|nft|callbackd|install|fail2ban|journalctl|linphonec)(\\s|$)")
	var autoRecall string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var block []string
		lang, in := "", false
		var span strings.Builder // inline code span open at a line's end
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				if in && (lang == "sh" || lang == "bash" || lang == "shell") {
					snippet := strings.Join(block, "\n")
					checkSnippet(t, fmt.Sprintf("%s:%d", f, i+1-len(block)), snippet)
					if strings.Contains(snippet, "auto-recall") && strings.HasSuffix(f, "README.md") {
						autoRecall = snippet
					}
				}
				in, block = !in, nil
				lang = strings.TrimPrefix(strings.TrimSpace(line), "```")
				continue
			}
			if in {
				block = append(block, line)
				continue
			}
			for _, c := range line {
				switch {
				case c == '`' && span.Len() == 0:
					span.WriteRune(c)
				case c == '`':
					span.Reset()
				case span.Len() > 0:
					span.WriteRune(c)
				}
			}
			if open := strings.TrimPrefix(span.String(), "`"); span.Len() > 0 {
				if command.MatchString(strings.TrimSpace(open)) {
					t.Errorf("%s:%d: the command `%s... goes on over a line break in an inline code span: use a ```sh block", f, i+1, open)
				}
				span.WriteRune(' ')
			}
		}
	}
	if autoRecall == "" {
		t.Fatal("README.md has no sh block with the auto-recall curl")
	}

	s := startServer(t, demoLines)
	script := strings.NewReplacer("TOKEN=...", "TOKEN="+apiToken, "http://127.0.0.1:8080", "http://"+s.HTTP).Replace(autoRecall)
	out, err := exec.Command("bash", "-e", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the README's auto-recall snippet: %v\n%s", err, out)
	}
	got, err := exec.Command("curl", "-s", "http://"+s.HTTP+"/api/v1/lines/1001").Output()
	if err != nil || !regexp.MustCompile(`"notification":\s*"auto-recall"`).Match(got) {
		t.Errorf("after the snippet line 1001 is %s (%v)", got, err)
	}
}

// checkSnippet: bash parses it, a line that the next one continues (the
// next starts with an option, indented) ends with a backslash, and a
// callbackd command uses flags the binary has.
func checkSnippet(t *testing.T, where, snippet string) {
	t.Helper()
	help, _ := exec.Command(binary, "-help").CombinedOutput()
	for _, line := range strings.Split(snippet, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "callbackd" && !strings.HasSuffix(f[0], "/callbackd")) {
			continue
		}
		for _, a := range f[1:] {
			if strings.HasPrefix(a, "-") && !strings.Contains(string(help), "\n  "+a+"\n") && !strings.Contains(string(help), "\n  "+a+" ") {
				t.Errorf("%s: %q uses %s, which callbackd -help does not list", where, line, a)
			}
		}
	}
	if out, err := exec.Command("bash", "-n", "-c", snippet).CombinedOutput(); err != nil {
		t.Errorf("%s: bash cannot read the snippet: %v\n%s\n%s", where, err, out, snippet)
	}
	lines := strings.Split(snippet, "\n")
	for i := 0; i+1 < len(lines); i++ {
		next := strings.TrimLeft(lines[i+1], " \t")
		if next != lines[i+1] && strings.HasPrefix(next, "-") && !strings.HasSuffix(strings.TrimRight(lines[i], " "), "\\") {
			t.Errorf("%s: line %q goes on in the next (%q) without a backslash", where, lines[i], lines[i+1])
		}
	}
}

// docs/deployment.md's nftables example opens the default ports, and nft
// reads it (where installed: not in CI).
func TestOps_DeploymentFirewallExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nft\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no nft block in docs/deployment.md")
	}
	rules := string(m[1])
	for _, want := range []string{"udp dport 5060 accept", "tcp dport { 5060, 5061 } accept", "udp dport 16384-32767 accept", "tcp dport 8080 accept"} {
		if !strings.Contains(rules, want) {
			t.Errorf("the firewall example has no %q", want)
		}
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Log("nft not installed: rules not parsed")
		return
	}
	path := filepath.Join(t.TempDir(), "callbackd.nft")
	os.WriteFile(path, []byte(rules), 0o600)
	if out, err := exec.Command(nft, "-c", "-f", path).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("nft -c: %v\n%s", err, out)
	}
}

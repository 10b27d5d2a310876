package web_test

// Browser tests: the real sessionhub binary, driven through its own pages in
// Debian's Chromium (headless) with chromedp.
//
// They need /usr/bin/chromium (or `chromium` on PATH): without it they skip,
// except under CI=true where they fail. They also skip under -short (they
// take tens of seconds). The Redis+Postgres test uses internal/testenv, and
// fails when those are unreachable, like every other store test.
//
// Screenshots of every page go to $SESSIONHUB_ARTIFACTS (default
// $TMPDIR/sessionhub-artifacts/<test>); the path is printed in the log.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
	"github.com/sessionhub/sessionhub/sessions"
)

// stepTimeout bounds one browser step (a navigation, a wait for an element):
// generous, because a cold Chromium on a busy CI machine is slow to start.
const stepTimeout = 30 * time.Second

// ---- the server under test ----

// buildBinary compiles cmd/sessionhub once per test into a temp dir. Go's
// build cache makes the second build cheap.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sessionhub")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/sessionhub")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ../cmd/sessionhub:\n%s", out)
	return bin
}

// lockedBuffer collects a subprocess's output for the failure log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is one running `sessionhub serve`.
type server struct {
	URL  string
	bin  string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
}

// baseEnv is the process environment without any sessionhub setting the
// developer may have exported, so the test decides every one.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SESSIONHUB_") || strings.HasPrefix(k, "GOOGLE_") ||
			k == "REDIS_URL" || k == "DATABASE_URL" || k == "PORT" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// startServer runs the binary on a free localhost port with the given extra
// environment and waits for /healthz. It is stopped (SIGTERM) when the test
// ends; its output is logged if the test failed.
func startServer(t *testing.T, bin string, extra ...string) *server {
	t.Helper()
	port := freePort(t)
	url := fmt.Sprintf("http://localhost:%d", port)
	env := append(baseEnv(),
		fmt.Sprintf("SESSIONHUB_ADDR=127.0.0.1:%d", port),
		"SESSIONHUB_METRICS_ADDR=127.0.0.1:0",
		"SESSIONHUB_PUBLIC_URL="+url,
		"SESSIONHUB_DRAIN=200ms",
	)
	env = append(env, extra...)
	s := &server{URL: url, bin: bin, env: env, logs: &lockedBuffer{}}
	s.start(t)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server output:\n%s", s.logs.String())
		}
	})
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	require.NoError(t, s.cmd.Start())
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)

	deadline := time.Now().Add(stepTimeout)
	for {
		res, err := http.Get(s.URL + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("sessionhub serve exited at start:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessionhub serve not healthy after %s:\n%s", stepTimeout, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM (the server drains its sockets with 1001) and waits.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// cli runs a sessionhub subcommand against the server's stores and returns
// its stdout.
func (s *server) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "sessionhub %s: %s", strings.Join(args, " "), stderr.String())
	return stdout.String()
}

// ---- the browser ----

func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are skipped under -short")
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: the browser tests must run (apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium); skipping the browser tests")
	return ""
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t        *testing.T
	ctx      context.Context
	problems *lockedBuffer
	shots    string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")

	dir := os.Getenv("SESSIONHUB_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sessionhub-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	require.NoError(t, os.RemoveAll(dir)) // no stale FAILED-*.png from an earlier run
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots: %s", dir)
	return &browser{t: t, ctx: ctx, problems: &lockedBuffer{}, shots: dir}
}

// tab is one page; tabs from newTab(isolated=true) have their own cookies,
// like a second device.
type tab struct {
	b    *browser
	ctx  context.Context
	name string
}

func (b *browser) tab(name string, isolated bool) *tab {
	b.t.Helper()
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(b.ctx, opts...)
	b.t.Cleanup(cancel)
	require.NoError(b.t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	// Collect what must never happen on our pages: uncaught exceptions and
	// CSP or Trusted Types violations. Failed requests (the 401 of a
	// "signed in?" probe, the 403 of the admin probe) are expected.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			text := m.Text
			if m.IsException() || m.Source == "security" ||
				strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Trusted Type") {
				fmt.Fprintf(b.problems, "[%s] %s: %s\n", name, m.Type, text)
			}
		}
	}()
	return &tab{b: b, ctx: ctx, name: name}
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	tb.check(chromedp.Do(ctx, actions...))
}

func run[T any](tb *tab, a chromedp.Action[T]) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	tb.check(err)
	return v
}

// check fails the test on err, first saving what the page looked like and
// what it complained about.
func (tb *tab) check(err error) {
	tb.b.t.Helper()
	if err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		p := filepath.Join(tb.b.shots, "FAILED-"+tb.name+".png")
		if os.WriteFile(p, png, 0o644) == nil {
			tb.b.t.Logf("screenshot of the failure: %s", p)
		}
	}
	if where, lerr := chromedp.Run(ctx, chromedp.Location()); lerr == nil {
		tb.b.t.Logf("tab %s was at %s", tb.name, where)
	}
	tb.b.t.Logf("page problems so far:\n%s", tb.b.problems.String())
	tb.b.t.Fatalf("tab %s: %v", tb.name, err)
}

func (tb *tab) text(css string) string {
	tb.b.t.Helper()
	return strings.TrimSpace(run(tb, chromedp.TextContent(chromedp.CSS(css))))
}

// until waits for a JavaScript expression to be true on the page. (Not
// chromedp.Poll: it compiles its predicate with new Function, which the
// pages' CSP forbids; Runtime.evaluate is not subject to it.)
func (tb *tab) until(expr string) {
	tb.b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		tb.check(err)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.check(fmt.Errorf("still false after %s: %s", stepTimeout, expr))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (tb *tab) visible(css string) { tb.b.t.Helper(); tb.do(chromedp.WaitVisible(chromedp.CSS(css))) }

// screenshot saves the full page as <artifacts>/<name>.png.
func (tb *tab) screenshot(name string) {
	tb.b.t.Helper()
	// Let animations (toasts, new log lines) settle.
	time.Sleep(350 * time.Millisecond)
	// From the top, or the sticky bar lands mid-page in a full screenshot.
	tb.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png := run(tb, chromedp.FullScreenshot(100))
	p := filepath.Join(tb.b.shots, name+".png")
	require.NoError(tb.b.t, os.WriteFile(p, png, 0o644))
	tb.b.t.Logf("screenshot %s", p)
}

// noProblems fails the test if a page threw or violated its CSP.
func (b *browser) noProblems() {
	b.t.Helper()
	require.Empty(b.t, b.problems.String(), "page errors or CSP violations")
}

// fill types into a field after clearing it.
func fill(css, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(css)),
		// Not chromedp.Clear (it resets the attribute, not what was typed)
		// nor SetValue (it fails under the pages' CSP).
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, css)),
		chromedp.SendKeys(chromedp.CSS(css), value),
	)
}

func click(css string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
}

// signup creates an account through the sign-up form and waits for the
// devices page.
func (tb *tab) signup(base, name, email, password string) {
	tb.b.t.Helper()
	tb.do(
		chromedp.Navigate(base+"/signup"),
		fill("#name", name),
		fill("#email", email),
		fill("#password", password),
		click("#auth-submit"),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li[data-current="true"]`)),
	)
}

// login logs in through the form and waits for the devices page.
func (tb *tab) login(base, email, password string) {
	tb.b.t.Helper()
	tb.do(
		chromedp.Navigate(base+"/login"),
		fill("#email", email),
		fill("#password", password),
		click("#auth-submit"),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li[data-current="true"]`)),
	)
}

func uniqueEmail(prefix string) string {
	return fmt.Sprintf("%s-%s@example.com", prefix, strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(sessions.RandomString(6))))
}

// ---- tests ----

// TestBrowserSignupLiveRevoke: sign up through the form, see the session on
// the devices page, see the live panel connect, use channels, then revoke
// that session from a second device: the first page says it was signed out
// on another device and does not reconnect.
func TestBrowserSignupLiveRevoke(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	srv := startServer(t, buildBinary(t), "SESSIONHUB_DEFAULT_SCOPES=sub:room:* pub:room:*")
	email, password := uniqueEmail("ada"), "correct horse battery staple"

	a := b.tab("device-A", false)
	a.do(chromedp.Navigate(srv.URL + "/login"))
	a.visible("#email")
	require.Equal(t, "true", run(a, chromedp.Evaluate[string](`String(document.querySelector("#google-block").hidden)`)),
		"no Google button when Google login is not configured")
	a.screenshot("01-login")

	a.do(chromedp.Navigate(srv.URL + "/signup"))
	a.visible("#name")
	a.screenshot("02-signup")
	a.signup(srv.URL, "Ada Lovelace", email, password)
	a.do(chromedp.WaitReady(chromedp.CSS(`body[data-admin]`)))
	require.Contains(t, a.text(`#sessions li[data-current="true"]`), "This device")
	require.Equal(t, "false", run(a, chromedp.Evaluate[string](`document.body.dataset.admin`)), "a new user is no admin")
	require.Equal(t, "true", run(a, chromedp.Evaluate[string](`String(document.querySelector('.nav a[href="/console"]').hidden)`)),
		"the Admin link is hidden for non-admins")
	require.Equal(t, "", run(a, chromedp.Evaluate[string](`localStorage.length + sessionStorage.length ? "storage used" : ""`)),
		"nothing is kept in web storage")
	a.screenshot("03-devices")

	// The live panel connects with the JWT subprotocol.
	a.do(chromedp.Navigate(srv.URL + "/live"))
	a.visible(`#status[data-state="open"]`)
	require.Contains(t, a.text("#status-text"), "Connected on node")
	require.True(t, strings.HasPrefix(a.text("#fact-channel"), "user:"))

	// Channels the user is granted (SESSIONHUB_DEFAULT_SCOPES) work; others are refused.
	a.do(fill("#sub-channel", "room:lobby"), click(`#subscribe-form button[type="submit"]`))
	a.until(`document.querySelector("#sub-status").textContent.includes("Subscribed to room:lobby")`)
	a.do(fill("#pub-channel", "room:lobby"), fill("#pub-data", `{"text":"hello lobby"}`), click(`#publish-form button[type="submit"]`))
	a.until(`[...document.querySelectorAll("#log li")].some(li => li.textContent.includes("hello lobby") && li.textContent.includes("room:lobby"))`)
	a.do(fill("#sub-channel", "secret:vault"), click(`#subscribe-form button[type="submit"]`))
	a.until(`document.querySelector("#sub-status").textContent.includes("Not allowed")`)
	a.screenshot("04-live")
	connects := a.text("#fact-connects")

	// A second device logs in and revokes the first one from its devices page.
	d := b.tab("device-B", true)
	d.login(srv.URL, email, password)
	d.do(chromedp.WaitVisible(chromedp.CSS(`#sessions li[data-current="false"]`)))
	d.screenshot("05-devices-second-device")
	d.do(click(`#sessions li[data-current="false"] button.danger`))
	d.visible("#confirm[open]")
	d.screenshot("06-revoke-confirm")
	start := time.Now()
	d.do(click("#confirm-ok"))

	a.visible(`#status[data-terminal="true"]`)
	t.Logf("first device saw the revocation %s after the click", time.Since(start).Round(time.Millisecond))
	require.Equal(t, "4001", run(a, chromedp.Evaluate[string](`document.querySelector("#status").dataset.code`)))
	require.Contains(t, strings.ToLower(a.text("#status-text")), "signed out on another device")
	a.visible("#session-ended")

	// It does not reconnect: wait longer than the first backoffs, and the
	// state and the connection count have not moved.
	time.Sleep(3 * time.Second)
	require.Equal(t, "true", run(a, chromedp.Evaluate[string](`document.querySelector("#status").dataset.terminal`)))
	require.Equal(t, "closed", run(a, chromedp.Evaluate[string](`document.querySelector("#status").dataset.state`)))
	require.Equal(t, connects, a.text("#fact-connects"))
	a.screenshot("07-live-signed-out")

	d.do(chromedp.WaitNotPresent(chromedp.CSS(`#sessions li[data-current="false"]`)))
	d.screenshot("08-devices-after-revoke")

	// The same pages on a phone-sized screen, and the 404 page.
	d.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	d.screenshot("09-devices-mobile")
	d.do(chromedp.Navigate(srv.URL + "/live"))
	d.visible(`#status[data-state="open"]`)
	d.screenshot("10-live-mobile")
	d.do(chromedp.Navigate(srv.URL + "/login"))
	d.screenshot("11-login-mobile")
	d.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/no-such-page"))
	d.visible(".notfound")
	d.screenshot("12-not-found")
	b.noProblems()
}

// TestBrowserWorkerAndAdmin runs on Redis+Postgres so that the CLI can act on
// the same stores: a worker's message to user:<id> shows on the live panel,
// and an admin logs that user out everywhere from the console, which shows
// the acknowledged counts while the user's page says it was logged out
// everywhere.
func TestBrowserWorkerAndAdmin(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	dbURL := testenv.SchemaURL(t)
	_, prefix := testenv.Redis(t)
	bin := buildBinary(t)
	srv := startServer(t, bin,
		"DATABASE_URL="+dbURL,
		"REDIS_URL="+testenv.RedisURL(),
		"SESSIONHUB_REDIS_PREFIX="+prefix,
	)

	adminEmail, adminPassword := uniqueEmail("grace"), "admin password 1"
	srv.cli(t, adminPassword+"\n", "user", "add", "--email", adminEmail, "--name", "Grace Hopper", "--admin")
	srv.cli(t, "", "user", "grant", "--email", adminEmail, "--scope", "pub:user:*")
	workerToken := strings.TrimSpace(srv.cli(t, "", "session", "create", "--email", adminEmail, "--service", "notifier", "--scope", "pub:user:*"))
	require.NotEmpty(t, workerToken)

	// The user's device: sign up, open the live panel.
	email := uniqueEmail("bob")
	u := b.tab("user", false)
	u.signup(srv.URL, "Bob Example", email, "bob password 1")
	u.do(chromedp.Navigate(srv.URL + "/live"))
	u.visible(`#status[data-state="open"]`)
	channel := u.text("#fact-channel")
	require.True(t, strings.HasPrefix(channel, "user:"), channel)

	// The worker trades its service session for a JWT and publishes.
	jwt := workerJWT(t, srv.URL, workerToken)
	publish(t, srv.URL, jwt, channel, map[string]string{"text": "Your export is ready"})
	u.until(`[...document.querySelectorAll("#log li")].some(li => li.textContent.includes("Your export is ready"))`)
	require.Contains(t, u.text("#log li"), "service:notifier")
	u.screenshot("01-live-worker-message")

	// The admin logs in (a second device), sees the Admin link, opens the console.
	a := b.tab("admin", true)
	a.login(srv.URL, adminEmail, adminPassword)
	a.visible(`.nav a[href="/console"]`)
	a.do(click(`.nav a[href="/console"]`))
	a.visible("#console")
	a.do(chromedp.WaitVisible(chromedp.CSS(`#users tr`)))
	a.screenshot("02-console-users")

	a.do(fill("#q", email), click(`#search-form button[type="submit"]`))
	row := fmt.Sprintf(`#users tr[data-email=%q]`, email)
	a.until(fmt.Sprintf(`document.querySelectorAll("#users tr").length === 1 && !!document.querySelector(%q)`, row))
	a.do(click(row + " button"))
	a.visible("#user-detail li.device")
	a.screenshot("03-console-user-sessions")

	a.do(click("#admin-logout-all"))
	a.visible("#confirm[open]")
	a.do(click("#confirm-ok"))
	a.visible("#admin-result")
	attrs := run(a, chromedp.Attributes(chromedp.CSS("#admin-result")))
	require.Equal(t, "1", attrs["data-sessions-revoked"], attrs)
	require.Equal(t, "1", attrs["data-sockets-closed"], attrs)
	require.Equal(t, "1", attrs["data-nodes-acked"], attrs)
	require.Contains(t, a.text("#admin-result"), "socket closed")
	a.screenshot("04-console-logged-out")

	u.visible(`#status[data-terminal="true"]`)
	require.Equal(t, "4002", run(u, chromedp.Evaluate[string](`document.querySelector("#status").dataset.code`)))
	require.Contains(t, strings.ToLower(u.text("#status-text")), "logged out everywhere")
	u.screenshot("05-live-logged-out-everywhere")

	// A non-admin who opens the console is told so (the API refuses anyway).
	u.login(srv.URL, email, "bob password 1")
	u.do(chromedp.Navigate(srv.URL + "/console"))
	u.visible("#denied")
	require.Equal(t, "true", run(u, chromedp.Evaluate[string](`String(document.querySelector("#console").hidden)`)))
	u.screenshot("06-console-denied")

	// The cluster view lists this node and its connections.
	a.do(click("#tab-cluster"))
	a.do(chromedp.WaitVisible(chromedp.CSS("#nodes tr")))
	require.Equal(t, "1", a.text("#stat-nodes"))
	a.screenshot("07-console-cluster")

	// Reports tab: the placeholder module mounts.
	a.do(click("#tab-reports"))
	a.visible("#reports-root section")
	a.screenshot("08-console-reports")
	b.noProblems()
}

// TestBrowserReconnectsAfterDrain: a node shutting down closes sockets with
// 1001; the page reconnects (with a fresh token) to the node that replaces
// it, on the same URL, and shows the new node.
func TestBrowserReconnectsAfterDrain(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	dbURL := testenv.SchemaURL(t)
	_, prefix := testenv.Redis(t)
	srv := startServer(t, buildBinary(t),
		"DATABASE_URL="+dbURL,
		"REDIS_URL="+testenv.RedisURL(),
		"SESSIONHUB_REDIS_PREFIX="+prefix,
	)
	p := b.tab("user", false)
	p.signup(srv.URL, "Carol", uniqueEmail("carol"), "carol password 1")
	p.do(chromedp.Navigate(srv.URL + "/live"))
	p.visible(`#status[data-state="open"]`)
	firstNode := p.text("#fact-node")

	srv.stop()
	p.visible(`#status[data-state="retrying"]`)
	p.until(`document.querySelector("#status").dataset.closes.startsWith("1001")`)
	p.screenshot("01-live-reconnecting")
	srv.start(t)

	p.until(fmt.Sprintf(
		`document.querySelector("#status").dataset.state === "open" && document.querySelector("#fact-node").textContent !== %q`, firstNode))
	require.Equal(t, "2", p.text("#fact-connects"))
	require.Contains(t, p.text("#status-text"), "Connected on node")
	p.screenshot("02-live-reconnected")
	b.noProblems()
}

// workerJWT trades a service session for a JWT, as a worker does.
func workerJWT(t *testing.T, base, sessionToken string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/session/token", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Session "+sessionToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	var tok struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(body, &tok))
	require.NotEmpty(t, tok.Token)
	return tok.Token
}

func publish(t *testing.T, base, jwt, channel string, data any) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"channel": channel, "data": data})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/api/publish", bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", body)
}

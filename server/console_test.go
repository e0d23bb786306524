package server_test

// Browser tests of the web console (issue 17, DESIGN §11): the real server
// serves the embedded console, a real headless Chromium (Debian's
// `chromium`, driven with chromedp) signs in and goes through the flow a
// user does, and the test checks what the browser shows and what hark
// stored. Each page is screenshotted at 1280×800 and at a phone's width
// into $HARK_TEST_OUTPUT/console (default testoutput/console at the
// repository's root, git-ignored).
//
// Without chromium the tests skip, unless HARK_BROWSER_REQUIRED is set (CI
// sets it), which turns the skip into a failure.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// browserTimeout bounds one wait for the page (the machine may be slow; a
// bound against hanging, not a speed goal).
const browserTimeout = 60 * time.Second

// chromium finds the browser or skips (fails under HARK_BROWSER_REQUIRED).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: the console's browser tests need Debian's chromium (apt-get install chromium)"
	if os.Getenv("HARK_BROWSER_REQUIRED") != "" {
		t.Fatal(msg + "; HARK_BROWSER_REQUIRED is set")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab on a hark server.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  string // screenshot folder
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		// Tests run as root in CI, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		// No network but loopback here: keep Chromium from reaching out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	out := os.Getenv("HARK_TEST_OUTPUT")
	if out == "" {
		out = filepath.Join("..", "testoutput")
	}
	out = filepath.Join(out, "console")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: base, out: out}
	// The first run starts the browser, and lives as long as it: no
	// timeout on this one.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.NewReplacer(" ", "-", "/", "-", `"`, "").Replace(what))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// wait polls the JavaScript expression until it is truthy.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))
	_, err := chromedp.Run(ctx, poll)
	// A navigation that replaces the document while the poll runs
	// destroys the context it evaluates in: poll the new document.
	for err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && ctx.Err() == nil {
		_, err = chromedp.Run(ctx, poll)
	}
	if err != nil {
		b.shot("failed-wait")
		var body string
		if s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`)); err == nil {
			body = s
		}
		b.t.Fatalf("browser: wait for %s: %v\npage %s says:\n%s", what, err, b.path(), body)
	}
}

// waitText waits until an element sel exists whose text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.wait(fmt.Sprintf("%q in %s", want, sel), fmt.Sprintf(
		`[...document.querySelectorAll(%q)].some(e => e.textContent.includes(%q))`, sel, want))
}

// text returns the text of the first element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return evalAs[string](b, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// evalAs runs JavaScript and returns its result.
func evalAs[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: eval %s: %v", expr, err)
	}
	return v
}

// exec runs JavaScript for its effect.
func (b *browser) exec(expr string) {
	b.t.Helper()
	b.do("exec "+expr, chromedp.Evaluate[chromedp.Void](expr))
}

// fill sets an input's, textarea's or select's value as typing or picking
// would, firing the event the page listens to.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do("fill "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		el.focus();
		el.value = %q;
		el.dispatchEvent(new Event(el.tagName === "SELECT" ? "change" : "input", {bubbles: true}));
	})()`, sel, value)))
}

// typeInto types text key by key into sel, after clearing it.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.fill(sel, "")
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// nav follows the navigation link to path, in the page (no reload).
func (b *browser) nav(path string) {
	b.t.Helper()
	b.click(fmt.Sprintf(`nav.side a[href=%q]`, path))
	b.wait("location "+path, fmt.Sprintf(`location.pathname === %q`, path))
}

// open loads path (a reload, as a pasted link would).
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// path returns the page's location path.
func (b *browser) path() string {
	p, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.pathname`))
	return p
}

// shot saves a screenshot of the viewport as <name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	// Let the last render settle.
	if err := chromedp.Do(ctx, chromedp.Sleep(150*time.Millisecond)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.out, name+".png"), png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

// viewport resizes the page, as a phone (touch, mobile) below 600 px.
func (b *browser) viewport(w, h int64) {
	b.t.Helper()
	if w < 600 {
		b.do("viewport", chromedp.EmulateViewport(w, h, chromedp.EmulateMobile, chromedp.EmulateTouch))
		return
	}
	b.do("viewport", chromedp.EmulateViewport(w, h))
}

// signIn signs in on the sign-in page with token.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.typeInto("#token", token)
	b.click("#sign-in")
	b.wait("signed in", `!location.pathname.startsWith("/sign-in") && !document.querySelector("#token")`)
}

// TestConsoleFlow is "Done when" of issue 17 in a real browser: sign in
// (a wrong token is refused); create a workflow and a source and read the
// source's URL; send an event to it and see it in the live log without a
// reload; create a trigger with a broken expression and see the error at
// its position, fix it, test it against the latest event, save it; see the
// run appear live; toggle the trigger inactive; retry a failed delivery.
func TestConsoleFlow(t *testing.T) {
	t.Parallel()
	chromium(t)
	// The receiver fails the first three attempts (all the fast schedule
	// makes), so the delivery ends FAILED; the retry's attempt succeeds.
	var fail atomic.Bool
	fail.Store(true)
	rc := newDstReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "receiver down", http.StatusServiceUnavailable)
		}
	})
	h := startServerWith(t, harnessOptions{config: func(c *server.Config) {
		c.AllowPrivateDestinations = true
		c.DeliverySchedule = dstFastSchedule
	}})
	b := newBrowser(t, h.base)

	// Sign in: a wrong token is refused, and nothing is kept.
	b.open("/")
	b.wait("sign-in form", `!!document.querySelector("#token")`)
	b.shot("signin")
	b.typeInto("#token", "not-the-token")
	b.click("#sign-in")
	b.waitText("#signin-error", "not hark's admin token")
	kept := evalAs[string](b, `sessionStorage.getItem("hark.adminToken") ?? ""`)
	if kept != "" {
		t.Fatalf("a refused token was kept in sessionStorage: %q", kept)
	}
	b.shot("signin-wrong-token")
	b.signIn(h.token)
	if p := b.path(); p != "/sources" {
		t.Fatalf("signed in at %s, want /sources", p)
	}
	b.waitText(".empty", "No sources yet")
	b.shot("sources-empty")
	cookies := evalAs[string](b, `document.cookie`)
	if cookies != "" {
		t.Errorf("the console set cookies: %q", cookies)
	}

	// A workflow for the trigger to start.
	b.nav("/workflows")
	b.waitText(".empty", "No workflows yet")
	b.shot("workflows-empty")
	b.typeInto("#workflow-key", "welcome")
	b.typeInto("#workflow-name", "Welcome")
	b.click(`#create-workflow button[type=submit]`)
	b.waitText("#workflows", "welcome")
	b.shot("workflows")

	// A source: an empty name is refused next to the field; then created.
	b.nav("/sources")
	b.click(`#create-source button[type=submit]`)
	b.wait("name violation", `!!document.querySelector('#create-source .field-error[data-field="name"]')`)
	b.shot("sources-name-required")
	b.typeInto("#source-name", "Web app")
	b.fill("#source-type", "segment")
	b.click(`#create-source button[type=submit]`)
	b.wait("source page", `location.pathname.startsWith("/sources/src_")`)
	sourceID := strings.TrimPrefix(b.path(), "/sources/")
	b.wait("development URL", `!!document.querySelector('[data-environment="development"] .code code')`)
	ingestURL := b.text(`[data-environment="development"] .code code`)
	src := mustCall(t, h.sources().GetSource, &harkv1.GetSourceRequest{Id: sourceID}).GetSource()
	if want := devURL(t, src); ingestURL != want {
		t.Fatalf("console shows development URL %q, API says %q", ingestURL, want)
	}
	if n := countSel(b, ".env-card"); n != len(src.GetEnvironments()) {
		t.Errorf("source page shows %d environments, the source has %d", n, len(src.GetEnvironments()))
	}
	// Settings toggle: identify on, so the event's user exists for the run.
	b.click(`[data-environment="development"] input[name="identify"]`)
	b.waitText(`[data-environment="development"] .ok`, "Identify saved")
	se := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: sourceID, Environment: "development"})
	if !se.GetSourceEnvironment().GetIdentifyEnabled() {
		t.Fatal("identify toggle did not reach the API")
	}
	b.shot("source")
	// Rotate the production token: the page shows the new URL, the API's.
	prodURL := b.text(`[data-environment="production"] .code code`)
	b.exec(`window.confirm = () => true`) // the browser's "are you sure?"
	b.click(`[data-environment="production"] button.danger`)
	b.wait("new production URL", fmt.Sprintf(`document.querySelector('[data-environment="production"] .code code').textContent !== %q`, prodURL))
	rotated := mustCall(t, h.sources().GetSourceEnvironment, &harkv1.GetSourceEnvironmentRequest{SourceId: sourceID, Environment: "production"})
	if got := b.text(`[data-environment="production"] .code code`); got != rotated.GetSourceEnvironment().GetIngestUrl() || got == prodURL {
		t.Fatalf("after rotating, the page shows %q; the API has %q (was %q)", got, rotated.GetSourceEnvironment().GetIngestUrl(), prodURL)
	}
	// "View events in production" switches the environment.
	b.click(`[data-environment="production"] .card-head a`)
	b.wait("production event log", `location.pathname === "/events" && document.querySelector("#environment").value === "production"`)
	b.waitText(".empty", "No events in production")
	b.fill("#environment", "development")

	// The live log: an event sent to the URL appears without a reload.
	b.nav("/events")
	b.waitText(".empty", "curl -X POST")
	b.waitText("#stream-status", "Live")
	b.shot("events-empty")
	b.exec(`window.__noReload = 1`)
	h.deliverOne(t, ingestURL, []byte(`{"type":"identify","userId":"u1","traits":{"name":"Ada","email":"ada@example.com"},"messageId":"m-identify"}`))
	signedUp := h.deliverOne(t, ingestURL, []byte(`{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"},"messageId":"m-1"}`))
	b.waitText("#events", "Signed Up")
	marker := evalAs[int](b, `window.__noReload ?? 0`)
	if marker != 1 {
		t.Fatal("the page reloaded to show the event")
	}
	b.shot("events")

	// Event detail: actions and the original payload.
	b.click(fmt.Sprintf(`#events tr[data-id=%q] a`, signedUp.GetId()))
	b.waitText("pre.json", `"messageId": "m-1"`)
	b.shot("event-detail")

	// Unique events, with a refresh.
	b.nav("/event-types")
	b.waitText("#event-types", "Signed Up")
	b.click("#refresh")
	b.waitText("#event-types", "Signed Up")
	b.shot("event-types")

	// A destination to receive the run (it fails for now).
	b.nav("/destinations")
	b.waitText(".empty", "No destinations")
	b.shot("destinations-empty")
	// A Knock destination without its api_key is refused next to the field.
	b.typeInto("#destination-name", "Knock")
	b.fill(`#create-destination select`, "knock")
	b.click(`#create-destination button[type=submit]`)
	b.waitText(`#create-destination .field-error[data-field="settings.api_key"]`, "")
	b.shot("destinations-knock-key-required")
	b.fill(`#create-destination select`, "webhook")
	b.typeInto("#destination-name", "Receiver")
	b.typeInto("#destination-url", rc.url())
	b.click(`#create-destination button[type=submit]`)
	b.wait("destination page", `location.pathname.startsWith("/destinations/dst_")`)
	destID := strings.TrimPrefix(b.path(), "/destinations/")
	b.waitText(".empty", "No deliveries yet")
	// The signing secret is shown once, from the create answer.
	b.waitText("dl.props", "Signing secret")
	b.shot("destination-empty")

	// The trigger editor: a broken condition shows its error at its
	// position, from the save-time compile, as it is typed.
	b.open("/triggers/new?source=" + sourceID + "&type=track&name=Signed%20Up")
	b.wait("editor", `!!document.querySelector("#trigger-condition")`)
	b.waitText("#trigger-workflow", "Welcome")
	b.typeInto("#trigger-condition", `data.plan == `)
	b.waitText(`.field-error[data-field="condition"]`, "line 1, column")
	b.waitText(`.field-error[data-field="condition"] .snippet`, "^")
	b.shot("trigger-broken")
	// Saving it is refused the same way, next to the field.
	b.click("#save-trigger")
	b.waitText(`.field-error[data-field="condition"]`, "line 1, column")
	if p := b.path(); p != "/triggers/new" {
		t.Fatalf("a broken trigger was saved: at %s", p)
	}
	b.typeInto("#trigger-condition", `data.plan == "pro"`)
	b.typeInto("#trigger-mapping-data", `{"plan": data.plan, "user": user_id}`)
	b.wait("condition error gone", `!document.querySelector('.field-error[data-field="condition"]')`)
	// Test against the latest event: condition, mapped values, recipients.
	b.click("#run-test")
	b.waitText("#test-condition", "true")
	b.waitText("#test-recipients", "u1")
	b.waitText("#test-panel pre.json", `"plan": "pro"`)
	b.waitText("#test-panel pre.json", `"user": "u1"`)
	b.shot("trigger-test")
	b.click("#save-trigger")
	b.wait("saved trigger", `location.pathname.startsWith("/triggers/trg_")`)
	triggerID := strings.TrimPrefix(b.path(), "/triggers/")
	trg := mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: "development", Id: triggerID}).GetTrigger()
	if trg.GetCondition() != `data.plan == "pro"` || trg.GetEvent() != "Signed Up" || trg.GetWorkflowKey() != "welcome" {
		t.Fatalf("saved trigger = %v", trg)
	}

	// The run appears on the runs page, live.
	b.nav("/runs")
	b.waitText(".empty", "No runs")
	b.waitText("#stream-status", "Live")
	b.shot("runs-empty")
	ev2 := h.deliverOne(t, ingestURL, []byte(`{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"},"messageId":"m-2"}`))
	b.waitText("#runs", "welcome")
	b.click("#runs tr.clickable")
	b.waitText("#runs tr.detail", ev2.GetId())
	b.shot("runs")
	// The event's detail shows the action that started the run.
	b.click(fmt.Sprintf(`#runs tr.detail a[href="/events/%s"]`, ev2.GetId()))
	b.waitText("#actions", "trigger workflow")
	b.waitText("#actions", "run_")
	b.shot("event-detail-actions")

	// Toggle the trigger inactive.
	b.nav("/triggers")
	b.waitText("#triggers", "Signed Up")
	b.shot("triggers")
	b.click(fmt.Sprintf(`#triggers tr[data-id=%q] .active-toggle`, triggerID))
	b.waitText(fmt.Sprintf(`#triggers tr[data-id=%q]`, triggerID), "inactive")
	trg = mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: "development", Id: triggerID}).GetTrigger()
	if trg.GetStatus() != harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE {
		t.Fatalf("trigger status after the toggle = %v", trg.GetStatus())
	}
	b.shot("triggers-inactive")
	// Edit the saved trigger: the change reaches the API, the rest stays.
	b.click(fmt.Sprintf(`#triggers tr[data-id=%q] a`, triggerID))
	b.wait("saved condition in the editor", `document.querySelector("#trigger-condition").value === 'data.plan == "pro"'`)
	b.typeInto("#trigger-condition", `data.plan in ["pro", "team"]`)
	b.waitText("#test-condition", "true")
	b.click("#save-trigger")
	b.waitText("#saved", "Saved")
	trg = mustCall(t, consoleTriggers(h).GetTrigger, &harkv1.GetTriggerRequest{Environment: "development", Id: triggerID}).GetTrigger()
	if trg.GetCondition() != `data.plan in ["pro", "team"]` || trg.GetStatus() != harkv1.TriggerStatus_TRIGGER_STATUS_INACTIVE || trg.GetMapping().GetData() == "" {
		t.Fatalf("edited trigger = %v", trg)
	}
	b.shot("trigger-edited")
	b.nav("/sources")
	b.waitText("#sources", "Web app")
	b.shot("sources")

	// Retry the failed delivery: it succeeds once the receiver is back.
	b.nav("/destinations")
	b.click(fmt.Sprintf(`a[href="/destinations/%s"]`, destID))
	b.wait("failed delivery", `!!document.querySelector('#deliveries tr[data-status="FAILED"] button.retry')`)
	// Its attempts, with the receiver's answers.
	b.click(`#deliveries tr[data-status="FAILED"] td:nth-child(2)`)
	b.waitText("#deliveries tr.detail", "HTTP 503")
	b.waitText("#deliveries tr.detail", "receiver down")
	b.shot("destination-failed")
	fail.Store(false)
	before := len(rc.requests())
	b.click(`#deliveries tr[data-status="FAILED"] button.retry`)
	b.wait("delivery succeeded", `!!document.querySelector('#deliveries tr[data-status="SUCCEEDED"]')`)
	if after := len(rc.requests()); after <= before {
		t.Fatalf("receiver got %d requests before the retry and %d after", before, after)
	}
	b.shot("destination-retried")

	// The other pages load and show what the API has.
	b.nav("/users")
	b.waitText("#users", "u1")
	b.waitText("#users", "ada@example.com")
	b.shot("users")
	h.deliver(t, ingestURL, []byte(`{"type":"track",`)) // refused: not JSON
	b.nav("/refusals")
	b.waitText("#refusals", "400")
	b.shot("refusals")

	// A narrow window: the same pages, with the navigation in a menu.
	b.viewport(390, 844)
	for _, p := range []struct{ path, name, ready string }{
		{"/sources/" + sourceID, "narrow-source", ".env-card"},
		{"/events", "narrow-events", "#events"},
		{"/triggers/" + triggerID, "narrow-trigger", "#test-panel"},
		{"/runs", "narrow-runs", "#runs"},
		{"/destinations/" + destID, "narrow-destination", "#deliveries"},
	} {
		b.open(p.path)
		b.wait(p.path, fmt.Sprintf(`!!document.querySelector(%q)`, p.ready))
		b.shot(p.name)
	}
	b.click(".menu-toggle")
	b.wait("menu", `!!document.querySelector("nav.side.open")`)
	b.shot("narrow-menu")
	b.viewport(1280, 800)

	// Signing out forgets the token.
	b.click("#sign-out")
	b.waitText(".notice", "You signed out")
	if kept := evalAs[string](b, `sessionStorage.getItem("hark.adminToken") ?? ""`); kept != "" {
		t.Fatalf("signed out, sessionStorage still has the token")
	}
	b.signIn(h.token)
	if p := b.path(); !strings.HasPrefix(p, "/destinations/") {
		t.Errorf("signed in again at %s, want the page signed out of", p)
	}

	// A token that stops working sends the user back to sign-in, saying so.
	b.exec(`sessionStorage.setItem("hark.adminToken", "expired")`)
	b.open("/triggers")
	b.wait("sign-in", `location.pathname === "/sign-in"`)
	b.waitText(".notice", "refused the admin token")
	b.shot("signin-expired")
	next := evalAs[string](b, `new URLSearchParams(location.search).get("next") ?? ""`)
	if next != "/triggers" {
		t.Errorf("sign-in's next = %q, want /triggers", next)
	}
}

func consoleTriggers(h *harness) harkv1connect.TriggerServiceClient {
	return harkv1connect.NewTriggerServiceClient(h.http, h.base, h.opts()...)
}

func countSel(b *browser, sel string) int {
	b.t.Helper()
	return evalAs[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// TestConsoleServing checks the console's HTTP side: the pages and assets
// are public with the right cache headers, a reload of a client route gets
// the app, the API keeps its auth, and --no-console turns it all off.
func TestConsoleServing(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	get := func(path string, header ...string) httpResult {
		t.Helper()
		return h.send(t, "", http.MethodGet, path, "", nil, header...)
	}
	index := get("/")
	wantStatus(t, index, http.StatusOK)
	if ct := index.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET / Content-Type = %q", ct)
	}
	if cc := index.header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("GET / Cache-Control = %q, want no-cache", cc)
	}
	if csp := index.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET / Content-Security-Policy = %q", csp)
	}
	// Client routes get the same page (the SPA fallback).
	for _, p := range []string{"/sources", "/sources/src_x", "/triggers/new", "/events/evt_1", "/sign-in"} {
		r := get(p)
		wantStatus(t, r, http.StatusOK)
		if string(r.body) != string(index.body) {
			t.Errorf("GET %s is not the console's index.html", p)
		}
	}
	// Revalidation: the ETag answers 304.
	if r := get("/", "If-None-Match", index.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Errorf("GET / with its ETag = %d, want 304", r.status)
	}
	// The bundles index.html names are served for good.
	var assets []string
	for _, part := range strings.Split(string(index.body), `"`) {
		if strings.HasPrefix(part, "/assets/") {
			assets = append(assets, part)
		}
	}
	if len(assets) != 2 {
		t.Fatalf("index.html names %d assets, want a script and a stylesheet: %s", len(assets), index.body)
	}
	for _, a := range assets {
		r := get(a)
		wantStatus(t, r, http.StatusOK)
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET %s Cache-Control = %q", a, cc)
		}
	}
	wantStatus(t, get("/assets/nope.js"), http.StatusNotFound)
	// The API keeps its auth, over REST and Connect, and paths that are not
	// the console's are still the API's.
	wantStatus(t, get("/v1/environments"), http.StatusUnauthorized)
	wantStatus(t, get("/unknown-page"), http.StatusUnauthorized)
	wantStatus(t, h.send(t, "", http.MethodPost, "/sources", "application/json", strings.NewReader("{}")), http.StatusUnauthorized)
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments", ""), http.StatusOK)
	if _, err := call(t, h.environments().ListEnvironments, &harkv1.ListEnvironmentsRequest{}); err != nil {
		t.Fatalf("ListEnvironments with the console on: %v", err)
	}

	off := startServerWith(t, harnessOptions{config: func(c *server.Config) { c.NoConsole = true }})
	for _, p := range []string{"/", "/sources", "/assets/" + filepath.Base(assets[0])} {
		if r := off.send(t, "", http.MethodGet, p, "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("NoConsole: GET %s = %d, want 401 (the API's)", p, r.status)
		}
		if r := off.send(t, off.admin(), http.MethodGet, p, "", nil); r.status == http.StatusOK && strings.Contains(string(r.body), "<div id=\"app\">") {
			t.Errorf("NoConsole: GET %s still serves the console", p)
		}
	}
}

// TestConsoleStreamReconnect: when the live log's stream is lost, the page
// says so and reconnects with backoff; once back, it shows the events that
// arrived meanwhile, without a reload. A proxy in front of the server cuts
// the browser's connections and refuses the stream for a while.
func TestConsoleStreamReconnect(t *testing.T) {
	t.Parallel()
	chromium(t)
	h := startServer(t)
	src := h.createSource(t, "Segment")
	target, err := url.Parse(h.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // pass the stream's messages on at once
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && strings.HasSuffix(r.URL.Path, "/WatchSourceEvents") {
			http.Error(w, "proxy: hark is away", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	b := newBrowser(t, front.URL)
	b.open("/")
	b.signIn(h.token)
	b.nav("/events")
	b.waitText("#stream-status", "Live")
	b.exec(`window.__noReload = 1`)

	down.Store(true)
	front.CloseClientConnections()
	b.waitText("#stream-status", "reconnecting in")
	b.shot("events-reconnecting")
	// An event arrives while the stream is down; a second failed attempt
	// backs off further.
	ev := h.deliverOne(t, devURL(t, src), []byte(`{"type":"track","event":"While Away","userId":"u1","messageId":"m-away"}`))
	down.Store(false)
	b.waitText("#stream-status", "Live")
	b.waitText("#events", "While Away")
	if evalAs[int](b, `window.__noReload ?? 0`) != 1 {
		t.Fatal("the page reloaded")
	}
	b.wait("event row", fmt.Sprintf(`!!document.querySelector('#events tr[data-id=%q]')`, ev.GetId()))
	// And the stream is live again: a new event arrives through it.
	h.deliverOne(t, devURL(t, src), []byte(`{"type":"track","event":"After Return","userId":"u1","messageId":"m-back"}`))
	b.waitText("#events", "After Return")

	// The log shows the latest page; "Load older" reads the next ones.
	var batch []string
	for i := range 55 {
		batch = append(batch, fmt.Sprintf(`{"type":"track","event":"Batch","userId":"u1","messageId":"m-b%d"}`, i))
	}
	h.mustDeliver(t, devURL(t, src), []byte(`{"batch":[`+strings.Join(batch, ",")+`]}`), 55)
	b.open("/events")
	b.wait("first page", `document.querySelectorAll("#events tbody tr").length === 50`)
	b.click("#load-older")
	b.wait("all 57 events", `document.querySelectorAll("#events tbody tr").length === 57`)
	b.wait("no more pages", `!document.querySelector("#load-older")`)
}

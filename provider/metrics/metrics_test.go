package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smallsso/provider/provider/audit"
)

func TestRecordCountsEventsWithBoundedLabels(t *testing.T) {
	t.Parallel()
	m := New()
	ctx := context.Background()
	m.Record(ctx, audit.TokensIssued("app", "sub", "authorization_code", nil))
	m.Record(ctx, audit.TokensIssued("app", "sub", "authorization_code", nil))
	m.Record(ctx, audit.TokensIssued("app", "sub", "made-up-grant", nil))
	m.Record(ctx, audit.SignInFailed("app", "alice", audit.ReasonBadPassword))
	m.Record(ctx, audit.SignInFailed("app", "nobody", audit.ReasonUnknownUser))
	m.Record(ctx, audit.SignInFailed("app", "alice", audit.ReasonThrottled))
	m.Record(ctx, audit.SignInFailed("app", "alice", "attacker-chosen"))
	m.Record(ctx, audit.SecondFactorFailed("app", "alice", "sub", audit.MethodTOTP, audit.ReasonBadCode))
	m.Record(ctx, audit.SecondFactorFailed("app", "alice", "sub", audit.MethodRecoveryCode, audit.ReasonCodeUsed))
	m.Record(ctx, audit.PasswordChange("sub", audit.ReasonThrottled))
	m.Record(ctx, audit.RateLimitedClient("app", "token"))
	m.Record(ctx, audit.Event{Name: "not-an-event", Outcome: "odd"})

	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.tokens.WithLabelValues("authorization_code")), 2, "tokens authorization_code"},
		{testutil.ToFloat64(m.tokens.WithLabelValues("other")), 1, "tokens other"},
		{testutil.ToFloat64(m.signinFailures.WithLabelValues("bad_credentials")), 2, "failures bad_credentials (a wrong password and an unknown user alike)"},
		{testutil.ToFloat64(m.signinFailures.WithLabelValues("other")), 1, "failures other"},
		{testutil.ToFloat64(m.signinFailures.WithLabelValues("bad_second_factor")), 2, "failures bad_second_factor (a wrong code and a spent one alike)"},
		{testutil.ToFloat64(m.throttled.WithLabelValues("signin")), 2, "throttled signin"},
		{testutil.ToFloat64(m.throttled.WithLabelValues("rate_limit")), 1, "throttled rate_limit"},
		{testutil.ToFloat64(m.events.WithLabelValues("other", "other")), 1, "events other"},
		{testutil.ToFloat64(m.events.WithLabelValues("signin", "failure")), 6, "events signin failure"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Nothing a client chose became a label value.
	body := scrapeHandler(t, m)
	for _, bad := range []string{"made-up-grant", "attacker-chosen", "not-an-event", `"alice"`, `"app"`} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics contain %s", bad)
		}
	}
}

func TestInstrumentLabelsByRouteTemplate(t *testing.T) {
	t.Parallel()
	m := New()
	mux := http.NewServeMux()
	mux.Handle("/register/", Route("/register/{client_id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("/ok", Route("/ok", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fine") // implicit 200
	})))
	mux.Handle("/drop", Route("/drop", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})))
	srv := httptest.NewServer(m.Instrument(mux))
	defer srv.Close()
	for _, p := range []string{"/register/abc", "/register/def", "/ok", "/elsewhere", "/drop"} {
		// A POST: net/http retries a GET that got no answer.
		resp, err := http.Post(srv.URL+p, "text/plain", nil)
		if p == "/drop" {
			if err == nil {
				t.Fatal("a dropped request was answered")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The counts are made after each answer leaves; the server is idle
	// once Close returns.
	srv.Close()
	for labels, want := range map[[2]string]float64{
		{"/register/{client_id}", "204"}: 2,
		{"/ok", "200"}:                   1,
		{"other", "404"}:                 1,
		{"/drop", "aborted"}:             1,
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(labels[0], labels[1])); got != want {
			t.Errorf("requests%v = %v, want %v", labels, got, want)
		}
	}
	body := scrapeHandler(t, m)
	if strings.Contains(body, "abc") || strings.Contains(body, "elsewhere") {
		t.Error("a raw path became a label")
	}
	if !strings.Contains(body, `provider_http_request_duration_seconds_count{route="/register/{client_id}"} 2`) {
		t.Errorf("no latency histogram by route:\n%s", body)
	}
	// Route without Instrument does nothing (and does not panic).
	rec := httptest.NewRecorder()
	Route("/x", http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
}

func TestJanitorAndDBSize(t *testing.T) {
	t.Parallel()
	m := New()
	m.DBSize(func() float64 { return 32768 })
	m.Janitor(0, nil)
	m.Janitor(12, nil)
	m.Janitor(3, errors.New("disk"))
	if got := testutil.ToFloat64(m.janitorRuns.WithLabelValues("success")); got != 2 {
		t.Errorf("successful runs %v", got)
	}
	if got := testutil.ToFloat64(m.janitorRuns.WithLabelValues("failure")); got != 1 {
		t.Errorf("failed runs %v", got)
	}
	if got := testutil.ToFloat64(m.janitorRemoved); got != 15 {
		t.Errorf("removed %v", got)
	}
	body := scrapeHandler(t, m)
	for _, want := range []string{"provider_db_size_bytes 32768", "provider_build_info{", "go_gc_duration_seconds", "process_start_time_seconds"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics have no %q", want)
		}
	}
}

// Two Metrics side by side (tests, or a restart in one process) do not
// collide: each has its own registry.
func TestRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := New(), New()
	a.Record(context.Background(), audit.TokensIssued("c", "s", "password", nil))
	if got := testutil.ToFloat64(b.tokens.WithLabelValues("password")); got != 0 {
		t.Errorf("b counted a's token: %v", got)
	}
}

func scrapeHandler(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: HTTP %d", rec.Code)
	}
	return rec.Body.String()
}

// Package metrics owns the Prometheus metrics: their names and labels, the
// registry (one per Metrics, never the global default one), the HTTP
// instrumentation (requests by route template and status, latency) and the
// /metrics handler served on its own listener.
//
// Most counters are fed by the audit events (Metrics is an audit.Sink), so
// a handler emits one event and gets both an audit line and a counter.
// Every label has a bounded set of values: route templates, status codes,
// the closed lists of event names, grant types and reasons.
//
// It must not import provider, storage or fosite.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/buildinfo"
)

const namespace = "provider"

// Metrics holds the provider's metrics in a registry of its own.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	events         *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	signinFailures *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	janitorRuns    *prometheus.CounterVec
	janitorRemoved prometheus.Counter
}

// Bounded label values; anything else counts as "other".
var (
	grantTypes = []string{"authorization_code", "refresh_token", "client_credentials", "password",
		"urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit"}
	signinReasons = []string{badCredentials, badSecondFactor, audit.ReasonThrottled, audit.ReasonError}
	outcomes      = []string{audit.Success, audit.Failure, audit.Denied}
)

// New makes the metrics, with the Go runtime and process collectors and
// provider_build_info.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route template and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route template.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_events_total",
			Help: "Audit events, by event name and outcome.",
		}, []string{"event", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tokens_issued_total",
			Help: "Successful grants (token responses), by grant type.",
		}, []string{"grant_type"}),
		signinFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "signin_failures_total",
			Help: "Refused sign-ins (login page, account page, password grant), by reason.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "throttled_total",
			Help: "Requests refused by a throttle: signin (password guessing) or rate_limit (a client's token endpoint limit).",
		}, []string{"kind"}),
		janitorRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "janitor_runs_total",
			Help: "Garbage collection runs over expired records, by outcome.",
		}, []string{"outcome"}),
		janitorRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "janitor_removed_total",
			Help: "Expired records removed by garbage collection.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.events, m.tokens, m.signinFailures, m.throttled, m.janitorRuns, m.janitorRemoved} {
		f(c)
	}
	// Zero series exist from the start, so rate() and alerts see them
	// before the first occurrence.
	for _, g := range grantTypes {
		m.tokens.WithLabelValues(g)
	}
	for _, r := range signinReasons {
		m.signinFailures.WithLabelValues(r)
	}
	m.throttled.WithLabelValues("signin")
	m.throttled.WithLabelValues("rate_limit")
	m.janitorRuns.WithLabelValues(audit.Success)
	m.janitorRuns.WithLabelValues(audit.Failure)

	bi := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Commit, "goversion": bi.GoVersion},
	})
	build.Set(1)
	f(build)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// DBSize exports size (the database file's size in bytes) as
// provider_db_size_bytes, read at each scrape.
func (m *Metrics) DBSize(size func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "db_size_bytes",
		Help: "Size of the database file in bytes.",
	}, size))
}

// Janitor counts one garbage collection run that removed n records.
func (m *Metrics) Janitor(n int, err error) {
	outcome := audit.Success
	if err != nil {
		outcome = audit.Failure
	}
	m.janitorRuns.WithLabelValues(outcome).Inc()
	if n > 0 {
		m.janitorRemoved.Add(float64(n))
	}
}

// badCredentials is the sign-in failure label of an unknown username and
// of a wrong password alike (the audit log tells them apart).
const badCredentials = "bad_credentials"

// badSecondFactor is every refused second factor: a wrong or spent code,
// a passkey refused.
const badSecondFactor = "bad_second_factor"

// Record implements audit.Sink: every event is counted, and some feed
// their own metric.
func (m *Metrics) Record(_ context.Context, e audit.Event) {
	m.events.WithLabelValues(bounded(e.Name, audit.Names), bounded(e.Outcome, outcomes)).Inc()
	switch {
	case e.Name == audit.TokenIssued:
		m.tokens.WithLabelValues(bounded(e.GrantType, grantTypes)).Inc()
	case e.Name == audit.SignIn && e.Outcome == audit.Failure:
		reason := e.Reason
		if reason == audit.ReasonUnknownUser || reason == audit.ReasonBadPassword {
			// One label for both: whoever may scrape the metrics must not
			// learn which usernames exist, which the login page hides.
			reason = badCredentials
		}
		switch reason {
		case audit.ReasonBadCode, audit.ReasonCodeUsed, audit.ReasonBadPasskey, audit.ReasonUnknownPasskey, audit.ReasonPasskeyCloned:
			reason = badSecondFactor
		}
		m.signinFailures.WithLabelValues(bounded(reason, signinReasons)).Inc()
	case e.Name == audit.RateLimited:
		m.throttled.WithLabelValues("rate_limit").Inc()
	}
	// The sign-in throttle also guards the account page's password check.
	if e.Reason == audit.ReasonThrottled {
		m.throttled.WithLabelValues("signin").Inc()
	}
}

func bounded(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Gatherer is the registry, for tests and for serving elsewhere.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

type routeKey struct{}

// route is where Route writes the request's route template for
// Instrument, which put it in the context.
type route struct{ name string }

// Route labels the requests next serves as template (a route as declared,
// "/register/{client_id}", never the raw path). Without Instrument around
// it, it does nothing.
func Route(template string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt, ok := r.Context().Value(routeKey{}).(*route); ok {
			rt.name = template
		}
		next.ServeHTTP(w, r)
	})
}

// Instrument counts and times the requests next answers, by the route
// template Route set inside it ("other" when none did: a request refused
// before routing). A request dropped without an answer (next panicked
// with http.ErrAbortHandler, as for a client gone before a 5xx) counts
// with code "aborted".
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := &route{name: "other"}
		rec := &recorder{ResponseWriter: w}
		returned := false
		defer func() {
			code := "aborted"
			switch {
			case rec.status != 0:
				code = strconv.Itoa(rec.status)
			case returned:
				code = "200" // net/http's answer to a handler that wrote nothing
			}
			m.requests.WithLabelValues(rt.name, code).Inc()
			m.latency.WithLabelValues(rt.name).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)))
		returned = true
	})
}

// recorder remembers the status code written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes through.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

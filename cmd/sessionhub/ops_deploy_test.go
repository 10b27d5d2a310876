package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// deployDir holds the production recipe (docker-compose, nginx,
// Prometheus, Grafana). No Docker engine runs where the tests do, so these
// tests check what can be checked without one: every file parses, every
// query names a metric the server exports, and the pieces agree with each
// other and with the configuration table.
const deployDir = "../../deploy"

// serverMetrics wires a server (memory mode: the metric set does not
// depend on the backends) on a registry, as serve does, and returns a
// function reporting whether a metric name is registered. It asks by
// descriptor, so vectors without children count; a histogram's _bucket,
// _sum and _count series count as its name.
func serverMetrics(t *testing.T) func(name string) bool {
	t.Helper()
	cfg, err := parseServeConfig(nil, envOf(nil), io.Discard)
	require.NoError(t, err)
	log := newLogger(cfg, io.Discard)
	b, err := openBackends(context.Background(), cfg, log)
	require.NoError(t, err)
	t.Cleanup(b.close)
	reg := newRegistry()
	_, err = wire(cfg, b, log, reg)
	require.NoError(t, err)

	// Registering a descriptor of a name the registry already holds fails
	// (a duplicate, or a clash of labels or help); a new name succeeds and
	// is taken back.
	has := func(name string) bool {
		probe := descCollector{prometheus.NewDesc(name, "probe", nil, nil)}
		if err := reg.Register(probe); err != nil {
			return true
		}
		reg.Unregister(probe)
		return false
	}
	return func(name string) bool {
		if has(name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && has(base) {
				return true
			}
		}
		return false
	}
}

// descCollector only describes; it is never collected.
type descCollector struct{ d *prometheus.Desc }

func (c descCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }
func (c descCollector) Collect(chan<- prometheus.Metric)    {}

// query is what a test needs to know of one PromQL expression.
type query struct {
	expr      string
	metrics   []string          // selected metric names
	grouping  []string          // labels of every by (...) clause
	matchers  map[string]string // label=value equality matchers
	quantiles []float64         // histogram_quantile's φ
}

// grafanaVar matches Grafana's variables ($__rate_interval, $instance,
// ${job}), replaced before parsing.
var grafanaVar = regexp.MustCompile(`\$\{?\w+\}?`)

// parsePromQL parses expr with Prometheus's own parser (Grafana's range
// variables become 5m) and collects what it selects.
func parsePromQL(t *testing.T, expr string) query {
	t.Helper()
	src := grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.HasPrefix(strings.Trim(v, "${}"), "__") {
			return "5m"
		}
		return ".*"
	})
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(src)
	require.NoError(t, err, "PromQL: %s", expr)
	q := query{expr: expr, matchers: map[string]string{}}
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := n.Name
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				} else if m.Type.String() == "=" {
					q.matchers[m.Name] = m.Value
				}
			}
			q.metrics = append(q.metrics, name)
		case *parser.AggregateExpr:
			if !n.Without {
				q.grouping = append(q.grouping, n.Grouping...)
			}
		case *parser.Call:
			if n.Func.Name == "histogram_quantile" {
				if lit, ok := n.Args[0].(*parser.NumberLiteral); ok {
					q.quantiles = append(q.quantiles, lit.Val)
				}
			}
		}
		return nil
	})
	require.NotEmpty(t, q.metrics, "PromQL selects no metric: %s", expr)
	return q
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int        `json:"id"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Panels     []panel    `json:"panels"` // rows
	Targets    []struct {
		Expr         string     `json:"expr"`
		LegendFormat string     `json:"legendFormat"`
		Datasource   datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "grafana/sessionhub-dashboard.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	return d
}

// TestDashboardQueriesExist parses every query of the Grafana dashboard,
// checks that each metric it selects is one the server registers, and that
// the panels issue 7 asks for are there.
func TestDashboardQueriesExist(t *testing.T) {
	t.Parallel()
	exists := serverMetrics(t)
	d := readDashboard(t)
	require.NotEmpty(t, d.UID)

	var queries []query
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			require.False(t, ids[p.ID], "panel id %d twice", p.ID)
			ids[p.ID] = true
			walk(p.Panels)
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
				require.NotEmpty(t, tg.LegendFormat, "panel %q: a legend tells its lines apart", p.Title)
				require.Equal(t, "prometheus", tg.Datasource.UID, "panel %q: the provisioned data source", p.Title)
				q := parsePromQL(t, tg.Expr)
				for _, m := range q.metrics {
					require.True(t, exists(m), "panel %q queries %s, which the server does not export", p.Title, m)
				}
				queries = append(queries, q)
			}
		}
	}
	walk(d.Panels)

	// The panels of issue 7: each is a query on the metric, grouped or
	// filtered as the panel's purpose needs.
	covers := func(metric string, ok func(q query) bool) bool {
		return slices.ContainsFunc(queries, func(q query) bool { return slices.Contains(q.metrics, metric) && ok(q) })
	}
	by := func(label string) func(q query) bool {
		return func(q query) bool { return slices.Contains(q.grouping, label) }
	}
	quantile := func(phi float64) func(q query) bool {
		return func(q query) bool { return slices.Contains(q.quantiles, phi) }
	}
	anyQuery := func(query) bool { return true }
	for what, ok := range map[string]bool{
		"connections per node":      covers("sessionhub_hub_connections", by("instance")),
		"connects by result":        covers("sessionhub_hub_connects_total", by("result")),
		"disconnects by reason":     covers("sessionhub_hub_disconnects_total", by("reason")),
		"revoke → close p50":        covers("sessionhub_hub_revoke_close_seconds_bucket", quantile(0.5)),
		"revoke → close p99":        covers("sessionhub_hub_revoke_close_seconds_bucket", quantile(0.99)),
		"logins by result":          covers("sessionhub_auth_logins_total", by("result")),
		"429s":                      covers("sessionhub_http_request_duration_seconds_count", func(q query) bool { return q.matchers["code"] == "429" }),
		"token mints":               covers("sessionhub_tokens_issued_total", anyQuery),
		"HTTP latency by route":     covers("sessionhub_http_request_duration_seconds_bucket", by("route")),
		"pub/sub reconnects":        covers("sessionhub_redis_pubsub_reconnects_total", anyQuery),
		"readiness per node":        covers("sessionhub_ready", by("instance")),
		"sessions active (cluster)": covers("sessionhub_sessions_active", anyQuery),
	} {
		require.True(t, ok, "the dashboard has no %s panel", what)
	}

	// The dashboard's data source is the provisioned one.
	var ds struct {
		Datasources []struct{ UID, Type, URL string } `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].UID)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, name))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, v), name)
}

// ruleFile is Prometheus's rule file format.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// templateFuncs are the functions Prometheus adds to its alert templates
// (bodies do not matter for parsing).
func templateFuncs() template.FuncMap {
	fm := template.FuncMap{}
	for _, name := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
		"humanizeTimestamp", "toTime", "toDuration", "title", "toUpper", "toLower", "query", "first",
		"label", "value", "strvalue", "args", "reReplaceAll", "match", "safeHtml", "pathPrefix",
		"externalURL", "sortByLabel", "stripPort", "stripDomain", "graphLink", "tableLink",
		"parseDuration", "now", "urlQueryEscape"} {
		fm[name] = func(...any) string { return "" }
	}
	return fm
}

// TestAlertRules parses deploy/prometheus/alerts.yml as Prometheus would:
// every expression with its PromQL parser, every `for` as a duration,
// every annotation as a template with Prometheus's variables; and checks
// that each metric a rule reads is exported, and that the alerts issue 7
// asks for exist.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	exists := serverMetrics(t)
	var rf ruleFile
	readYAML(t, "prometheus/alerts.yml", &rf)
	require.NotEmpty(t, rf.Groups)

	reads := map[string][]string{} // alert → metrics
	for _, g := range rf.Groups {
		require.NotEmpty(t, g.Name)
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert)
			require.NotContains(t, reads, r.Alert, "alert %s twice", r.Alert)
			q := parsePromQL(t, r.Expr)
			for _, m := range q.metrics {
				// up is Prometheus's own series for every scrape target.
				require.True(t, m == "up" || exists(m), "alert %s reads %s, which the server does not export", r.Alert, m)
			}
			reads[r.Alert] = q.metrics
			if r.For != "" {
				_, err := model.ParseDuration(r.For)
				require.NoError(t, err, "alert %s: for", r.Alert)
			}
			require.Contains(t, []string{"page", "ticket"}, r.Labels["severity"], "alert %s: severity", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "alert %s: summary", r.Alert)
			for k, text := range r.Annotations {
				// Prometheus prepends these definitions to every template.
				defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
				_, err := template.New(k).Funcs(templateFuncs()).Parse(defs + text)
				require.NoError(t, err, "alert %s: annotation %s", r.Alert, k)
			}
		}
	}

	reading := func(metric string) bool {
		for _, ms := range reads {
			if slices.Contains(ms, metric) {
				return true
			}
		}
		return false
	}
	for what, metric := range map[string]string{
		"revoke latency p99 too high": "sessionhub_hub_revoke_close_seconds_bucket",
		"pub/sub reconnect storm":     "sessionhub_redis_pubsub_reconnects_total",
		"login failure spike":         "sessionhub_auth_logins_total",
		"node down":                   "up",
		"readiness failing":           "sessionhub_ready",
		"store down (degraded)":       "sessionhub_store_up",
	} {
		require.True(t, reading(metric), "no alert for %s (reading %s)", what, metric)
	}
}

// compose is the part of docker-compose.yml the test reads.
type compose struct {
	Services map[string]struct {
		Image       string                                `yaml:"image"`
		Build       *struct{ Context, Dockerfile string } `yaml:"build"`
		Command     []string                              `yaml:"command"`
		Environment map[string]string                     `yaml:"environment"`
		DependsOn   dependsOn                             `yaml:"depends_on"`
		Volumes     []string                              `yaml:"volumes"`
		Secrets     []string                              `yaml:"secrets"`
		Ports       []string                              `yaml:"ports"`
		Networks    map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
		StopGracePeriod string `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Secrets  map[string]struct{ File string } `yaml:"secrets"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct{ Subnet string } `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

// TestComposeRecipe checks deploy/docker-compose.yml and the files it
// mounts against each other and against the binary: the nodes' settings
// are variables of the configuration table and parse; the proxy sends to
// every node's public port and is the only trusted proxy; Prometheus
// scrapes every node's metrics port and loads the alert rules that are
// mounted; Grafana finds the dashboard where its provider looks.
func TestComposeRecipe(t *testing.T) {
	t.Parallel()
	var c compose
	readYAML(t, "docker-compose.yml", &c)
	for _, name := range []string{"postgres", "redis", "migrate", "proxy", "prometheus", "grafana"} {
		require.Contains(t, c.Services, name)
	}

	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = true
	}
	var nodes []string
	metricsPort := ""
	for name, svc := range c.Services {
		for dep := range svc.DependsOn {
			require.Contains(t, c.Services, dep, "%s depends on a service that does not exist", name)
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				_, err := os.Stat(filepath.Join(deployDir, src))
				require.NoError(t, err, "%s mounts %s", name, src)
			}
		}
		for _, s := range svc.Secrets {
			require.Contains(t, c.Secrets, s, "%s uses an undeclared secret", name)
		}
		if svc.Build == nil {
			require.NotEmpty(t, svc.Image, name)
			continue
		}
		// A sessionhub container: the image of the repository's Dockerfile.
		_, err := os.Stat(filepath.Join(deployDir, svc.Build.Context, svc.Build.Dockerfile))
		require.NoError(t, err, "%s builds from a Dockerfile that does not exist", name)
		require.NotEmpty(t, svc.Command)
		require.Contains(t, []string{"serve", "migrate"}, svc.Command[0], name)
		env := map[string]string{}
		for k, v := range svc.Environment {
			require.True(t, known[k], "%s sets %s, which is not in the configuration table", name, k)
			env[k] = v
		}
		// The keys file is a compose secret, mounted only in a container.
		require.Equal(t, "/run/secrets/keys.json", env["SESSIONHUB_KEYS_FILE"], name)
		require.Contains(t, c.Secrets, "keys.json")
		env["SESSIONHUB_KEYS_FILE"] = "ops_deploy_test.go"
		cfg, err := parseServeConfig(svc.Command[1:], envOf(env), io.Discard)
		require.NoError(t, err, "%s's settings", name)
		if svc.Command[0] != "serve" {
			continue
		}
		nodes = append(nodes, name)
		require.False(t, cfg.Memory(), "%s runs on Redis and Postgres", name)
		_, port, err := net.SplitHostPort(cfg.MetricsAddr)
		require.NoError(t, err)
		host, _, _ := net.SplitHostPort(cfg.MetricsAddr)
		require.NotEqual(t, "127.0.0.1", host, "%s: Prometheus scrapes from another container", name)
		metricsPort = port
		require.Equal(t, "service_completed_successfully", svc.DependsOn["migrate"], "%s starts after the migrations", name)
		require.NotEmpty(t, svc.StopGracePeriod, "%s: SIGTERM needs up to 10 s", name)
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		require.NoError(t, err)
		require.Greater(t, grace.Seconds(), 10.0, "%s: Docker kills at the grace period; API.md allows 10 s", name)

		// The stores are the compose services.
		u, err := url.Parse(cfg.DatabaseURL)
		require.NoError(t, err)
		require.Equal(t, "postgres", u.Hostname())
		pw, _ := u.User.Password()
		pg := c.Services["postgres"].Environment
		require.Equal(t, pg["POSTGRES_USER"], u.User.Username())
		require.Equal(t, pg["POSTGRES_PASSWORD"], pw)
		require.Equal(t, "/"+pg["POSTGRES_DB"], u.Path)
		u, err = url.Parse(cfg.RedisURL)
		require.NoError(t, err)
		require.Equal(t, "redis", u.Hostname())

		// Only the proxy is trusted for X-Forwarded-For.
		proxyIP := c.Services["proxy"].Networks["default"].IPv4
		require.NotEmpty(t, proxyIP, "the proxy has a fixed address")
		ip := netip.MustParseAddr(proxyIP)
		require.Len(t, cfg.TrustedProxies, 1)
		require.True(t, cfg.TrustedProxies[0].Contains(ip))
		require.Equal(t, 32, cfg.TrustedProxies[0].Bits(), "trust the proxy alone, not a range")
		require.Len(t, c.Networks["default"].IPAM.Config, 1)
		require.True(t, netip.MustParsePrefix(c.Networks["default"].IPAM.Config[0].Subnet).Contains(ip))
	}
	slices.Sort(nodes)
	require.GreaterOrEqual(t, len(nodes), 2, "a cluster of at least two nodes")

	// nginx balances over every node's public port (SESSIONHUB_ADDR's
	// default, :8080) and lets the server's own limits answer.
	raw, err := os.ReadFile(filepath.Join(deployDir, "nginx.conf"))
	require.NoError(t, err)
	nginx := string(raw)
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+):(\d+)`).FindAllStringSubmatch(nginx, -1) {
		require.Equal(t, "8080", m[2])
		upstreams = append(upstreams, m[1])
	}
	slices.Sort(upstreams)
	require.Equal(t, nodes, upstreams, "nginx's upstream is the set of nodes")
	for _, directive := range []string{"proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade",
		"proxy_set_header X-Forwarded-For $remote_addr", "proxy_http_version 1.1"} {
		require.Contains(t, nginx, directive)
	}
	m := regexp.MustCompile(`client_max_body_size\s+(\d+)([km]?);`).FindStringSubmatch(nginx)
	require.NotNil(t, m)
	size, _ := strconv.Atoi(m[1])
	size <<= map[string]int{"": 0, "k": 10, "m": 20}[m[2]]
	require.Greater(t, size, maxBody, "nginx must not answer 413 before the server's JSON one")

	// Prometheus scrapes every node's metrics port, as job "sessionhub"
	// (the alerts' up{job="sessionhub"}), and loads the mounted rules.
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom)
	require.Len(t, prom.ScrapeConfigs, 1)
	require.Equal(t, "sessionhub", prom.ScrapeConfigs[0].JobName)
	var targets []string
	for _, sc := range prom.ScrapeConfigs[0].StaticConfigs {
		for _, tg := range sc.Targets {
			host, port, err := net.SplitHostPort(tg)
			require.NoError(t, err)
			require.Equal(t, metricsPort, port, "scrape %s on SESSIONHUB_METRICS_ADDR's port", tg)
			targets = append(targets, host)
		}
	}
	slices.Sort(targets)
	require.Equal(t, nodes, targets, "Prometheus scrapes every node")
	mounted := mountTargets(c.Services["prometheus"].Volumes)
	require.Contains(t, mounted, "/etc/prometheus/prometheus.yml")
	for _, f := range prom.RuleFiles {
		require.Contains(t, mounted, f, "the rule file is mounted")
	}

	// Grafana's dashboard provider looks where the dashboard is mounted.
	var prov struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/sessionhub.yml", &prov)
	require.Len(t, prov.Providers, 1)
	found := false
	for _, target := range mountTargets(c.Services["grafana"].Volumes) {
		found = found || (filepath.Dir(target) == prov.Providers[0].Options.Path && strings.HasSuffix(target, ".json"))
	}
	require.True(t, found, "the dashboard JSON is mounted in %s", prov.Providers[0].Options.Path)
	require.Contains(t, mountTargets(c.Services["grafana"].Volumes), "/etc/grafana/provisioning")

	// The keys file never lands in git.
	ignore, err := os.ReadFile(filepath.Join(deployDir, ".gitignore"))
	require.NoError(t, err)
	require.Contains(t, strings.Fields(string(ignore)), c.Secrets["keys.json"].File[len("./"):])
}

// dependsOn is compose's depends_on, short (a list) or long (a map):
// service → condition ("service_started" for the short form).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	var list []string
	if err := n.Decode(&list); err == nil {
		for _, s := range list {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	for s, c := range long {
		(*d)[s] = c.Condition
	}
	return nil
}

// mountTargets are the container paths of compose volume strings.
func mountTargets(volumes []string) []string {
	var out []string
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out = append(out, parts[1])
		}
	}
	return out
}

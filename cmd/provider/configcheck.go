package main

// Reading config.yaml so that every problem is reported at once, each with
// its key path and line: the file is parsed into a yaml.Node tree, walked
// against fileConfig's yaml tags (unknown keys, keys given twice, values of
// the wrong type), and only then decoded and validated. Whatever
// validate() reports through add() gets the line of the deepest key path
// found in the file.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/smallsso/provider/templates"
)

// configProblem is one thing wrong with the config file.
type configProblem struct {
	key  string // YAML key path (clients[2].redirect_uris[0]); "" for the file as a whole
	line int    // 0 when the key is not in the file
	msg  string
}

// configError is every problem found in a config file. run prints one
// line per problem: "provider: <command>: FILE:LINE: KEY: PROBLEM".
type configError struct {
	path     string // the file as named on the command line
	problems []configProblem
}

// lines are the problems, one per line, in the order of the file
// (problems with no line, such as a missing key, first).
func (e *configError) lines() []string {
	out := make([]string, 0, len(e.problems))
	for _, p := range e.problems {
		s := e.path
		if p.line > 0 {
			s += ":" + strconv.Itoa(p.line)
		}
		s += ": "
		if p.key != "" {
			s += p.key + ": "
		}
		out = append(out, s+p.msg)
	}
	return out
}

func (e *configError) Error() string { return strings.Join(e.lines(), "\n") }

// Problems are the lines, for a reload to log one by one.
func (e *configError) Problems() []string { return e.lines() }

// configSource is the config file as parsed: where each key path is, and
// which ones were refused by the walk (wrong type), so that validate's
// consequences of a refused value (a zero value) are not reported too.
type configSource struct {
	nodes  map[string]*yaml.Node // key path → its value
	lines  map[string]int        // key path → line of the key (or of the list item)
	broken []string              // key paths whose value was refused
}

// parseConfig reads a config file's bytes into a validated fileConfig,
// or returns every problem found. path is the file as given; nothing is
// opened or created but the files the config names to be read (jwks_file,
// initial_access_token_file, templates_dir).
func parseConfig(path string, raw []byte) (*fileConfig, []configProblem) {
	src := &configSource{nodes: map[string]*yaml.Node{}, lines: map[string]int{}}
	var problems []configProblem
	report := func(key string, line int, format string, args ...any) {
		problems = append(problems, configProblem{key: key, line: line, msg: fmt.Sprintf(format, args...)})
	}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || err == nil && isNull(doc.Content[0]) {
		report("", 0, "the file is empty: it needs at least issuer (the URL relying parties use, e.g. https://sso.example.org)")
		return nil, problems
	}
	if err != nil {
		line, msg := syntaxError(err, raw)
		report("", line, "not valid YAML: %s", msg)
		return nil, problems
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		report("", second.Line, "a second YAML document (after ---); the config is one document")
	} else if !errors.Is(err, io.EOF) {
		line, msg := syntaxError(err, raw)
		report("", line, "not valid YAML: %s", msg)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		report("", root.Line, "the config must be a mapping of keys (issuer: ..., listen: ...), not %s", kindName(root))
		return nil, problems
	}

	cfg := &fileConfig{src: src}
	src.walk(root, reflect.TypeOf(cfg).Elem(), "", 0, report)
	// The walk refused (and emptied) every value that would not decode,
	// so what remains is an error of the walk's, reported by line.
	if err := root.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				line, msg := lineOf(e)
				report(src.pathAt(line), line, "%s", typeErrorText(msg))
			}
		} else {
			report("", 0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		report("", 0, "%v", err)
		return nil, problems
	}
	cfg.dir, cfg.path = filepath.Dir(abs), abs
	cfg.defaults()
	problems = append(problems, cfg.validate()...)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].line < problems[j].line })
	return cfg, problems
}

// adder is validate's add: it names the deepest key path it can find for
// the problem (see refine) and attaches its line, unless the value there
// was already refused by the walk.
func (s *configSource) adder(problems *[]configProblem) func(key, format string, args ...any) {
	return func(key, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if s == nil {
			*problems = append(*problems, configProblem{key: key, msg: msg})
			return
		}
		if s.suppressed(key) {
			return
		}
		key = s.refine(key, msg)
		*problems = append(*problems, configProblem{key: key, line: s.lineOf(key), msg: msg})
	}
}

// lineOf is the line of key, or of its deepest ancestor in the file.
func (s *configSource) lineOf(key string) int {
	for s != nil && key != "" {
		if l, ok := s.lines[key]; ok {
			return l
		}
		key = parentPath(key)
	}
	return 0
}

// pathAt is the deepest key path on line, for errors that know only a line.
func (s *configSource) pathAt(line int) string {
	best := ""
	for k, l := range s.lines {
		if l == line && (len(k) > len(best) || len(k) == len(best) && k < best) {
			best = k
		}
	}
	return best
}

// suppressed reports whether a problem at key follows from a value the
// walk refused: the same key, one of its ancestors, or anything in the
// same list entry (clients[2] decoded with a refused field would report
// its consequences).
func (s *configSource) suppressed(key string) bool {
	for _, b := range s.broken {
		entry := b
		if i := strings.Index(b, "]"); i >= 0 {
			entry = b[:i+1]
		}
		if underPath(key, entry) || underPath(b, key) {
			return true
		}
	}
	return false
}

// underPath reports whether path is p or below it.
func underPath(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

func parentPath(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndex(key, "["); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

var (
	leadingKey = regexp.MustCompile(`^[a-z][a-z0-9_]*\b`)
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// refine goes below key when the problem names where: a message that
// starts with a key of the mapping at key (`secret_hash: ...`), and then
// a quoted value that is one of the values below
// (`redirect URI "http://x/cb": ...` is clients[2].redirect_uris[0]).
func (s *configSource) refine(key, msg string) string {
	n := s.nodes[key]
	if n == nil {
		return key
	}
	if w := leadingKey.FindString(msg); w != "" && n.Kind == yaml.MappingNode {
		if _, ok := s.nodes[joinPath(key, w)]; ok {
			key = joinPath(key, w)
		}
	}
	for _, q := range quoted.FindAllString(msg, -1) {
		v, err := strconv.Unquote(q)
		if err != nil || v == "" {
			continue
		}
		best, bestLine := "", 0
		for p, n := range s.nodes {
			if n.Kind != yaml.ScalarNode || n.Value != v || !underPath(p, key) {
				continue
			}
			l := s.lines[p]
			if best == "" || l < bestLine || l == bestLine && (len(p) > len(best) || len(p) == len(best) && p < best) {
				best, bestLine = p, l
			}
		}
		if best != "" {
			return best
		}
	}
	return key
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// walk checks node n against type t at key path, reporting unknown keys,
// keys given twice and values of the wrong type, with what was expected.
// A refused value is emptied (made null), so decoding the tree afterwards
// leaves the field at its zero value instead of failing.
func (s *configSource) walk(n *yaml.Node, t reflect.Type, path string, depth int, report func(key string, line int, format string, args ...any)) {
	if depth > 64 {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		s.nodes[path] = n
	}
	if isNull(n) {
		// A block whose presence switches something on (tls.acme) would
		// otherwise read as absent: say so instead of leaving it off.
		if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && path != "" {
			line, ok := s.lines[path]
			if !ok {
				line = n.Line
			}
			report(path, line, "is empty: give its keys indented below it, or remove it")
		}
		return
	}
	refuse := func(format string, args ...any) {
		line, ok := s.lines[path] // the key's line, not its value's
		if !ok {
			line = n.Line
		}
		report(path, line, format, args...)
		s.broken = append(s.broken, path)
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// A type that reads itself (duration, jwks): its own words, without
		// yaml's "line N: " (the line is ours to give).
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			refuse("%s", typeErrorText(yamlErrorText(err)))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		s.walk(n, t.Elem(), path, depth+1, report)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			refuse("must be a mapping (keys indented below it), not %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				continue
			}
			child := joinPath(path, k.Value)
			if first, ok := seen[k.Value]; ok {
				report(child, k.Line, "given twice (first at line %d); the first is used", first)
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				i -= 2
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if guess := closest(k.Value, fields); guess != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", guess)
				}
				// The path is the mapping the key is in: the unknown key
				// itself is no path an operator could look up.
				report(path, k.Line, "%s", msg)
				continue
			}
			s.lines[child] = k.Line
			s.walk(v, ft, child, depth+1, report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			refuse("must be a list (lines starting with \"- \", or [a, b]), not %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			s.lines[child] = item.Line
			s.walk(item, t.Elem(), child, depth+1, report)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			refuse("must be a mapping (keys indented below it), not %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			child := joinPath(path, n.Content[i].Value)
			s.lines[child] = n.Content[i].Line
			s.walk(n.Content[i+1], t.Elem(), child, depth+1, report)
		}
	case reflect.Interface:
	default:
		want := expected(t)
		if n.Kind != yaml.ScalarNode {
			refuse("must be %s, not %s", want, kindName(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			refuse("must be %s, not %q", want, n.Value)
		}
	}
}

// yamlFields are the keys a struct takes, as yaml.v3 names them (inline
// structs flattened).
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// expected says in words what a value of t looks like.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a single value (text)"
	}
	return "a single value"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kindName names what the file has where something else was expected.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "this"
}

// closest is the known key nearest to a misspelt one (at most two
// edits, and fewer than a third of its letters), or "".
func closest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD*3 > len(key) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// lineOf splits "line N: text" into N and text.
func lineOf(s string) (int, string) {
	m := yamlLine.FindStringSubmatch(s)
	if m == nil {
		return 0, s
	}
	n, _ := strconv.Atoi(m[1])
	return n, s[len(m[0]):]
}

// yamlErrorText is a decode error without yaml's prefixes and lines.
func yamlErrorText(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		parts := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			_, parts[i] = lineOf(e)
		}
		return strings.Join(parts, "; ")
	}
	_, msg := lineOf(strings.TrimPrefix(err.Error(), "yaml: "))
	return msg
}

var cannotUnmarshal = regexp.MustCompile("cannot unmarshal (!!\\w+)(?: `([^`]*)`)? into \\S+")

// typeErrorText rewrites yaml's "cannot unmarshal !!seq into main.x"
// without Go type names.
func typeErrorText(msg string) string {
	return cannotUnmarshal.ReplaceAllStringFunc(msg, func(s string) string {
		m := cannotUnmarshal.FindStringSubmatch(s)
		what := map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "text", "!!int": "a number",
			"!!float": "a number", "!!bool": "true or false", "!!null": "nothing"}[m[1]]
		if m[2] != "" {
			return fmt.Sprintf("%q is not a valid value here", m[2])
		}
		if what == "" {
			what = "this"
		}
		return what + " is not a valid value here"
	})
}

// syntaxError is the line and text of a YAML syntax error. yaml.v3 leaves
// the line out when it is the first.
func syntaxError(err error, raw []byte) (int, string) {
	line, msg := lineOf(strings.TrimPrefix(err.Error(), "yaml: "))
	if line == 0 {
		line = 1
	}
	if strings.Contains(msg, "cannot start any token") {
		lines := strings.Split(string(raw), "\n")
		if line <= len(lines) && strings.Contains(lines[line-1], "\t") {
			msg += " (a tab: indent with spaces)"
		}
	}
	return line, msg
}

func newConfigCmd(e *env) *cobra.Command {
	return group("config", "Check the config file", newConfigCheckCmd(e))
}

// newConfigCheckCmd validates a config file as serve would, without
// opening the database, the keys or a listener, or creating anything.
func newConfigCheckCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate the config file without starting anything; every problem is printed, one per line",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			// The pages of ui.templates_dir parse as serve would parse them.
			if _, err := templates.Load(cfg.UI.TemplatesDir); err != nil {
				return &configError{path: configPath, problems: []configProblem{{key: "ui.templates_dir", line: cfg.src.lineOf("ui.templates_dir"), msg: err.Error()}}}
			}
			fmt.Fprintf(e.stdout, "%s: ok: issuer %s, %s, %s, %s\n", configPath, cfg.Issuer,
				plural(len(cfg.Clients), "client"), plural(len(cfg.Users), "user"), plural(len(cfg.TrustedIssuers), "trusted issuer"))
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

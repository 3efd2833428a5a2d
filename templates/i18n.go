package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// The message catalogue: English is the source language and its keys are
// the English texts themselves (fmt formats), so a page in English needs
// no catalogue at all. Every other language is locales/<tag>.json, a flat
// JSON object from English text to translation; a key it lacks shows in
// English. An operator adds a language by putting a file of that name in
// ui.templates_dir.
//
// A text that counts something ("Try again in %d minutes.") has a form per
// plural category of the language: its value is then a JSON object from
// CLDR category (zero, one, two, few, many, other; other is required) to
// text, chosen by the first argument. English needs its forms too, so
// locales/en.json exists, and holds nothing but such objects.

// catalogue is the languages the pages speak, English first.
type catalogue struct {
	langs    []string // BCP 47 tags, English first
	matcher  language.Matcher
	printers map[string]*message.Printer
}

func loadCatalogue(fsys fs.FS, describe func(string) string) (*catalogue, error) {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	tags := []language.Tag{language.English}
	files, err := fs.Glob(fsys, "locales/*.json")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".json")
		tag, err := language.Parse(name)
		if err != nil || tag.String() != name {
			return nil, fmt.Errorf("templates: %s: the file name must be a canonical BCP 47 language tag like de or pt-BR", describe(f))
		}
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", describe(f), err)
		}
		var msgs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", describe(f), err)
		}
		for k, v := range msgs {
			msg, counts, err := parseMessage(v)
			if err == nil && tag == language.English && !counts {
				err = errors.New("English is the source language; its texts are the keys themselves, and en.json holds only the plural forms of texts that count")
			}
			if err == nil {
				err = b.Set(tag, k, msg)
			}
			if err != nil {
				return nil, fmt.Errorf("templates: %s: %q: %w", describe(f), k, err)
			}
		}
		if tag != language.English {
			tags = append(tags, tag)
		}
	}
	c := &catalogue{matcher: language.NewMatcher(tags), printers: map[string]*message.Printer{}}
	for _, tag := range tags {
		c.langs = append(c.langs, tag.String())
		c.printers[tag.String()] = message.NewPrinter(tag, message.Catalog(b))
	}
	return c, nil
}

// pluralCategories are CLDR's plural categories, in the order plural.Selectf
// is given them: "other" last, as the catch-all.
var pluralCategories = []string{"zero", "one", "two", "few", "many", "other"}

// parseMessage reads one translation: a string, or an object of plural
// forms (counts is then true) chosen by the first argument.
func parseMessage(raw json.RawMessage) (msg catalog.Message, counts bool, err error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return catalog.String(s), false, nil
	}
	var forms map[string]string
	if err := json.Unmarshal(raw, &forms); err != nil {
		return nil, false, errors.New("a translation is a string, or an object of plural forms such as {\"one\": \"…\", \"other\": \"…\"}")
	}
	if _, ok := forms["other"]; !ok {
		return nil, false, errors.New(`plural forms need "other"`)
	}
	var cases []any
	for _, c := range pluralCategories {
		if v, ok := forms[c]; ok {
			cases = append(cases, c, v)
			delete(forms, c)
		}
	}
	for c := range forms {
		return nil, false, fmt.Errorf("%q is not a plural category (%s)", c, strings.Join(pluralCategories, ", "))
	}
	return plural.Selectf(1, "%d", cases...), true, nil
}

// Languages are the BCP 47 tags the pages speak, English first.
func (s *Set) Languages() []string { return append([]string(nil), s.cat.langs...) }

// Match picks the pages' language: the first of the authorization
// request's ui_locales (space-separated, OpenID Connect Core §3.1.2.1)
// the catalogue has, else the browser's Accept-Language, else English.
func (s *Set) Match(uiLocales, acceptLanguage string) string {
	var tags []language.Tag
	for _, f := range strings.Fields(uiLocales) {
		if t, err := language.Parse(f); err == nil {
			tags = append(tags, t)
		}
	}
	if lang, ok := s.match(tags); ok {
		return lang
	}
	tags, _, _ = language.ParseAcceptLanguage(acceptLanguage)
	if lang, ok := s.match(tags); ok {
		return lang
	}
	return s.cat.langs[0]
}

func (s *Set) match(tags []language.Tag) (string, bool) {
	if len(tags) == 0 {
		return "", false
	}
	_, i, conf := s.cat.matcher.Match(tags...)
	if conf == language.No {
		return "", false
	}
	return s.cat.langs[i], true
}

// T translates key (an English fmt format) into lang and formats it.
func (s *Set) T(lang, key string, args ...any) string {
	p, ok := s.cat.printers[lang]
	if !ok {
		p = s.cat.printers[s.cat.langs[0]]
	}
	return p.Sprintf(key, args...)
}

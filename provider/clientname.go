package provider

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/smallsso/provider/storage"
)

// invisibleInName reports whether s holds a character that has no place in
// a name people read on the consent and sign-out pages: controls (Cc),
// format characters (Cf: zero-width spaces and joiners, the soft hyphen,
// bidi overrides and isolates) and line or paragraph separators. They make
// one name look like another ("Payroll\u200b", "Pay\u00adroll") or turn
// the text around it ("\u202e").
func invisibleInName(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
	})
}

// nameKey is what two client names are compared by: NFKC (full-width and
// compatibility forms become plain letters), case-folded, without any
// white space, so "Ｐａｙ  ROLL" and "Payroll" are one name.
//
// Letters of other scripts that only look alike (a Cyrillic "а" in
// "Pаyroll") are not caught: no normalisation maps them together, and a
// confusables table would refuse honest names. The consent page marks
// every openly registered client as not verified by the organisation,
// which is the defence there.
func nameKey(s string) string {
	s = norm.NFKC.String(s)
	s = cases.Fold().String(s) // a Caser is not safe for concurrent use
	s = norm.NFKC.String(s)
	return strings.Join(strings.Fields(s), "")
}

// protectedName reports whether an openly registered client may not use
// name: it is, once normalised, the name people see for a client the
// organisation vouches for (declared in config or by the CLI, or
// registered with the initial access token). Clients without a name show
// their ID, so the ID is protected then.
func protectedName(clients []storage.Client, name string) bool {
	key := nameKey(name)
	if key == "" {
		return false
	}
	for _, c := range clients {
		if !c.OpenlyRegistered() && nameKey(newClient(c).displayName()) == key {
			return true
		}
	}
	return false
}

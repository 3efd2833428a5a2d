// Package providertest drives the provider's pages the way a person's
// browser does: it keeps cookies, follows redirects, and fills the one form
// on each page. Tests of any package use it against a real server.
package providertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Browser is a cookie-keeping HTTP client that stops at redirects leaving
// the provider, so the test sees the redirect to the client.
type Browser struct {
	HTTP   *http.Client
	issuer *url.URL
}

// NewBrowser returns a browser for the provider at issuer.
func NewBrowser(issuer string) *Browser {
	u, err := url.Parse(issuer)
	if err != nil {
		panic(err) // a test's own constant
	}
	jar, _ := cookiejar.New(nil)
	b := &Browser{issuer: u}
	b.HTTP = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != u.Host {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}}
	return b
}

// Page is one response the browser got.
type Page struct {
	URL      *url.URL
	Status   int
	Header   http.Header
	Body     string
	Location *url.URL // set when the provider redirected away from itself
}

// Get loads a URL.
func (b *Browser) Get(ctx context.Context, rawURL string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	return b.do(req)
}

// Do sends any request with the browser's cookies, as a page would (a form
// that posts elsewhere, say).
func (b *Browser) Do(req *http.Request) (*Page, error) { return b.do(req) }

func (b *Browser) do(req *http.Request) (*Page, error) {
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := &Page{URL: resp.Request.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc, err := resp.Location(); err == nil {
			p.Location = loc
		}
	}
	return p, nil
}

// Form is the one form on a page.
type Form struct {
	Action  string
	Method  string
	Values  url.Values
	Buttons map[string][]string // submit button name → values
}

// ParseForm finds the single form on the page, leaving out forms marked
// hidden (a script shows them when the browser can use them).
func (p *Page) ParseForm() (*Form, error) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	var forms []*Form
	var walk func(n *html.Node, f *Form)
	walk = func(n *html.Node, f *Form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				if hasAttr(n, "hidden") {
					return // shown by a script only (passkeys): not the page's form
				}
				f = &Form{Action: attr(n, "action"), Method: strings.ToUpper(attr(n, "method")), Values: url.Values{}, Buttons: map[string][]string{}}
				forms = append(forms, f)
			case "input":
				if f != nil && attr(n, "name") != "" {
					switch strings.ToLower(attr(n, "type")) {
					case "submit":
						f.Buttons[attr(n, "name")] = append(f.Buttons[attr(n, "name")], attr(n, "value"))
					case "checkbox", "radio":
						if hasAttr(n, "checked") {
							f.Values.Add(attr(n, "name"), attr(n, "value"))
						}
					default:
						f.Values.Add(attr(n, "name"), attr(n, "value"))
					}
				}
			case "button":
				if f != nil && attr(n, "name") != "" && (attr(n, "type") == "" || attr(n, "type") == "submit") {
					f.Buttons[attr(n, "name")] = append(f.Buttons[attr(n, "name")], attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	if len(forms) != 1 {
		return nil, fmt.Errorf("want exactly one form on %s, found %d: %s", p.URL, len(forms), snippet(p.Body))
	}
	return forms[0], nil
}

// Submit posts the form from page with the given field overrides.
func (b *Browser) Submit(ctx context.Context, page *Page, f *Form, set url.Values) (*Page, error) {
	vals := url.Values{}
	for k, v := range f.Values {
		vals[k] = append([]string(nil), v...)
	}
	for k, v := range set {
		vals[k] = v
	}
	action, err := page.URL.Parse(f.Action)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// SignIn walks from authURL through the login form (if shown) and the
// consent form (if shown, answering decision "allow" or "deny") to the
// redirect back to the client, and returns that redirect.
func (b *Browser) SignIn(ctx context.Context, authURL, username, password, decision string) (*url.URL, error) {
	page, err := b.SignInPage(ctx, authURL, username, password, decision)
	if err != nil {
		return nil, err
	}
	if page.Location == nil {
		return nil, fmt.Errorf("no redirect: HTTP %d at %s: %s", page.Status, page.URL, snippet(page.Body))
	}
	return page.Location, nil
}

// SignInPage is SignIn for flows that may end on a page rather than a
// redirect (the out-of-band code page, an error page): it fills the login
// and consent forms and returns the first page that is neither.
func (b *Browser) SignInPage(ctx context.Context, authURL, username, password, decision string) (*Page, error) {
	page, err := b.Get(ctx, authURL)
	if err != nil {
		return nil, err
	}
	for step := 0; step < 4; step++ {
		if page.Location != nil || page.Status != http.StatusOK {
			return page, nil
		}
		form, err := page.ParseForm()
		if err != nil {
			return page, nil // a page without the one form: the end
		}
		set := url.Values{}
		switch {
		case form.Values.Has("password"):
			set.Set("username", username)
			set.Set("password", password)
		case len(form.Buttons["decision"]) > 0:
			set.Set("decision", decision)
		default:
			return page, nil
		}
		if page, err = b.Submit(ctx, page, form, set); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("sign-in did not finish")
}

// InputValue returns the value of the input with the given id on the
// page, or "" if there is none.
func (p *Page) InputValue(id string) string {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return ""
	}
	var found string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "id") == id {
			found = attr(n, "value")
		}
		for c := n.FirstChild; c != nil && found == ""; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func snippet(s string) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

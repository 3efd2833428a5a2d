package templates

import "html/template"

// FormPost is the page of OAuth 2.0 Form Post Response Mode: a form that
// posts the authorization response to the client's redirect URI. fosite
// executes it with {RedirURL string; Parameters url.Values}. It submits
// itself from a static script (the Content-Security-Policy allows no
// inline script) and shows a Continue button for browsers without
// JavaScript. base is the issuer's path prefix, for the static files.
func FormPost(base string) *template.Template {
	return template.Must(template.New("formpost.html").
		Funcs(template.FuncMap{"base": func() string { return base }}).
		ParseFS(embedded, "formpost.html"))
}

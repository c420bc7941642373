package dashboard

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
)

// The page is three files: page.html, the template; page.css, its style
// sheet; page.js, the script that updates it live. The style sheet and the
// script are inlined in the page, which loads nothing else.
var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
)

// pageTemplate renders a page. html/template escapes every name and error
// it shows, exit names and targets included; the style sheet and the
// script go in as they are (they hold no data).
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"pageCSS": func() template.CSS { return template.CSS(pageCSS) },
	"pageJS":  func() template.JS { return template.JS(pageJS) },
}).Parse(pageHTML))

// pageCSP is the Content-Security-Policy of the page: it runs its own
// script and style sheet, allowed by their hashes, and connects only to
// its own origin (for the JSON and the page it fetches to update itself);
// nothing else loads. The hashes are those of the inline texts, which
// TestHandlerCSP checks against what the template writes.
var pageCSP = "default-src 'none'; script-src " + cspHash(pageJS) + "; style-src " + cspHash(pageCSS) +
	"; connect-src 'self'; base-uri 'none'; form-action 'none'"

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

package dashboard

import (
	_ "embed"
	"html/template"
)

// The page is two files: page.html, the template, and page.css, its style
// sheet, inlined in the page, which loads nothing else.
var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
)

// pageTemplate renders a page. html/template escapes every name and error
// it shows, exit names and targets included; the style sheet goes in as it
// is (it holds no data).
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"pageCSS": func() template.CSS { return template.CSS(pageCSS) },
}).Parse(pageHTML))

// Package site serves a small web site of linked HTML pages for the colly
// example's crawler and tests: page 0 is "/", and page i links to pages
// 2i+1 and 2i+2 (when they exist) and back to "/", so that a crawler
// starting at "/" finds every page exactly once.
package site

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Site is an http.Handler serving Pages pages. The zero value serves one
// page. It is safe for concurrent use.
type Site struct {
	// Pages is the number of pages, "/" included. Zero means 1.
	Pages int
	// Padding adds that many bytes of text to every page, to make pages
	// larger than a client's body limit. Zero means none.
	Padding int
}

// Path returns the path of page i: "/" for page 0, "/page/i" otherwise.
func Path(i int) string {
	if i == 0 {
		return "/"
	}
	return "/page/" + strconv.Itoa(i)
}

// URLs returns the URLs of the first n pages under base (for example
// "https://127.0.0.1:8443").
func URLs(base string, n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = base + Path(i)
	}
	return urls
}

// ServeHTTP answers a page's HTML, or 404 for any other path.
func (s Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i, ok := s.page(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html><head><title>page %d</title></head><body>\n<h1>page %d</h1>\n<a href=\"/\">home</a>\n", i, i)
	for _, child := range []int{2*i + 1, 2*i + 2} {
		if child < s.pages() {
			fmt.Fprintf(&b, "<a href=%q>page %d</a>\n", Path(child), child)
		}
	}
	if s.Padding > 0 {
		fmt.Fprintf(&b, "<p>%s</p>\n", strings.Repeat("x", s.Padding))
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = w.Write([]byte(b.String()))
}

func (s Site) pages() int { return max(s.Pages, 1) }

// page returns the number of the page at path, and whether there is one.
func (s Site) page(path string) (int, bool) {
	if path == "/" {
		return 0, true
	}
	n, ok := strings.CutPrefix(path, "/page/")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 1 || i >= s.pages() || Path(i) != path {
		return 0, false
	}
	return i, true
}

// Package guardtest helps tests send the requests package guard refuses: with another Host, an
// Origin, fetch metadata or a body of another media type.
package guardtest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Request is a request for url with body (none when nil) as contentType (none when "") and the
// headers in header, where the key "Host" sets the request's Host.
func Request(t testing.TB, method, url, contentType string, body []byte, header map[string]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	return req
}

// Do sends req with c (http.DefaultClient when nil) and returns the answer's status, header and
// body.
func Do(t testing.TB, c *http.Client, req *http.Request) (status int, header http.Header, body string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(data)
}

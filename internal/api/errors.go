package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/guard"
)

// writeError is the one place that decides an error's body and logging; its status comes from
// fhir's one table of codes. Errors without a code are internal: 500, logged with detail under a
// reference the client also sees. Messages never carry person data.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	issues, status := fhir.Explain(err)
	if status >= 500 && guard.ClientGone(r) {
		// the connection closed while the request was served: nobody reads the answer, and the
		// error is most likely the cancellation, no fault of the server
		s.Log.Info("client went away", "method", r.Method, "route", routePattern(r), "err", err)
		issues, status = fhir.Explain(fhir.Fail(fhir.CodeInvalid, "", "the client went away before the answer"))
	}
	if status >= 500 {
		ref := reference()
		s.Log.Error("request failed", "ref", ref, "method", r.Method, "route", routePattern(r), "err", err)
		if len(issues) == 0 {
			issues = fhir.Issues{{Severity: fhir.SeverityFatal, Code: fhir.CodeException, Diagnostics: "internal error; the server log has the details under reference " + ref}}
		}
	}
	if _, ok := w.(*formatWriter); !ok { // an error before negotiation: answered as asked if possible
		w = &formatWriter{ResponseWriter: w, f: s.formatFor(w, r)}
	}
	writeXML(w, status, fhir.OperationOutcome(issues))
}

// readBody reads a request body within the server's limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := readAll(http.MaxBytesReader(w, r.Body, s.Limits.MaxBytes), r.ContentLength, s.Limits.MaxBytes)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fhir.Fail(fhir.CodeTooCostly, "", "the body is larger than the server accepts (%s)", byteSize(mbe.Limit))
	}
	if guard.BodyBroken(err) {
		// the client closed the connection or sent slower than the read deadline
		s.Log.Debug("request body broke off", "method", r.Method, "route", routePattern(r), "err", err)
		return nil, fhir.Wrap(err, fhir.CodeStructure, "the request body ended before its announced end or arrived too slowly")
	}
	return data, nil
}

// readAll is io.ReadAll with room from the start for the size the body announces, when it is
// within limit (admission has counted that size already), rather than growing step by step.
func readAll(body io.Reader, announced, limit int64) ([]byte, error) {
	size := int64(512)
	if announced > 0 && announced <= limit {
		size = announced + 1 // the one more byte sees the end without growing
	}
	data := make([]byte, 0, size)
	for {
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

func reference() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

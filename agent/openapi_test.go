package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// specRouter loads the OCM 1.4.0 OpenAPI document (a copy of the spec
// repository's file) with its servers pointed at base.
func specRouter(t *testing.T, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("testdata/ocm-api-1.4.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The spec's own examples are not all valid (an integer example for a
	// string userID); only the schemas matter here.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		t.Fatalf("the spec itself does not validate: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base + "/ocm"}}
	for path, item := range doc.Paths.Map() {
		if path == "/.well-known/ocm" {
			item.Servers = openapi3.Servers{{URL: base}}
		}
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, r
}

// exchange sends req, then validates both the request and the answer
// against the spec, and returns the status.
func exchange(t *testing.T, r routers.Router, method, url string, body []byte, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	route, params, err := r.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the spec: %v", method, url, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Fatalf("the test's own request does not match the spec: %v", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(data)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Fatalf("%s %s: answer %d %s does not match the spec: %v", method, url, resp.StatusCode, data, err)
	}
	return resp.StatusCode
}

func TestResponsesMatchOpenAPI(t *testing.T) {
	td := startDaemon(t, nil)
	_, r := specRouter(t, td.base)
	if code := exchange(t, r, "GET", td.base+"/.well-known/ocm", nil, nil); code != 200 {
		t.Fatalf("discovery: %d", code)
	}
	if code := exchange(t, r, "GET", td.base+"/.well-known/ocm", nil, http.Header{"User-Agent": {"Nextcloud Server Crawler"}}); code != 200 {
		t.Fatalf("legacy discovery: %d", code)
	}
	// Only 1.4-shaped requests: the other dialects are not valid 1.4 bodies.
	for _, f := range []string{"ocmgo.json"} {
		if code := exchange(t, r, "POST", td.base+"/ocm/shares", td.fixture(t, f), nil); code != 201 {
			t.Fatalf("%s: %d", f, code)
		}
	}
	bad := bytes.Replace(td.fixture(t, "ocmgo.json"), []byte(`"bob@`), []byte(`"nobody@`), 1)
	if code := exchange(t, r, "POST", td.base+"/ocm/shares", bad, nil); code != 400 {
		t.Fatalf("bad share: %d", code)
	}
	group := bytes.Replace(td.fixture(t, "ocmgo.json"), []byte(`"shareType":"user"`), []byte(`"shareType":"group"`), 1)
	if code := exchange(t, r, "POST", td.base+"/ocm/shares", group, nil); code != 501 {
		t.Fatalf("group share: %d", code)
	}
	if code := exchange(t, r, "POST", td.base+"/ocm/notifications", notification("SHARE_UNSHARED", "8b1e2f9c-4d6a-4c3e-9f1a-2b7c8d9e0f11", `{"sharedSecret":"Go-Secret"}`), nil); code != 201 {
		t.Fatalf("notification: %d", code)
	}
	if code := exchange(t, r, "POST", td.base+"/ocm/notifications", notification("NO_SUCH_TYPE", "x", ""), nil); code != 501 {
		t.Fatalf("unknown notification: %d", code)
	}
}

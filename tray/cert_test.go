package tray

import (
	"strings"
	"testing"
	"time"
)

// TestCertificateRenewalProblem: a failing renewal of the agent's own
// certificate shows, and turns the icon to error in its last two weeks.
func TestCertificateRenewalProblem(t *testing.T) {
	at := func(days int, errMsg string) Snapshot {
		s := connected()
		s.Status.CertName, s.Status.CertError = "ocm.example.org", errMsg
		s.Status.CertNotAfter = t0.Add(time.Duration(days) * 24 * time.Hour)
		return s
	}
	if ps := at(5, "").Problems(); len(ps) != 0 {
		t.Fatalf("a renewing certificate is a problem: %+v", ps)
	}
	far := at(40, "connection refused")
	if ps := far.Problems(); len(ps) != 1 || ps[0].Severe || !strings.Contains(ps[0].Detail, "40 days left") {
		t.Fatalf("a failing renewal far from the end: %+v", ps)
	}
	if far.Icon() == IconError {
		t.Error("the icon turns to error 40 days before the end")
	}
	near := at(5, "connection refused")
	if near.Icon() != IconError || near.Summary() != "The HTTPS certificate cannot be renewed" {
		t.Errorf("5 days before the end: icon %v, summary %q", near.Icon(), near.Summary())
	}
	none := connected()
	none.Status.CertName, none.Status.CertError = "ocm.example.org", "timeout"
	if ps := none.Problems(); len(ps) != 1 || !ps[0].Severe || ps[0].Title != "No HTTPS certificate yet" {
		t.Fatalf("no certificate at all: %+v", ps)
	}
}

package apiserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
)

// auditPolicy records every write to a webhook configuration, who made it
// and how it ended; nothing else (istiod renews its leases every few
// seconds, Flux applies hundreds of objects).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete]
  resources:
  - group: admissionregistration.k8s.io
    resources: [mutatingwebhookconfigurations, validatingwebhookconfigurations]
- level: None
`

func (s *Server) auditPolicy() string { return filepath.Join(s.dir, "audit-policy.yaml") }
func (s *Server) auditLog() string    { return filepath.Join(s.dir, "audit.log") }

// Write is a write to a webhook configuration that the server served, as
// its audit log has it.
type Write struct {
	// User is who wrote: "system:serviceaccount:istio-system:istiod-1-31"
	// for istiod, the test's admin for Flux.
	User string
	// Verb is the API verb: create, update, patch or delete.
	Verb string
	// Kind is MutatingWebhookConfiguration or ValidatingWebhookConfiguration.
	Kind, Name string
	// Code is the response's HTTP status.
	Code int
	// DryRun: the request was a dry-run, which changes nothing.
	DryRun bool
}

// auditEvent is the part of an audit.k8s.io/v1 Event that Write reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource string `json:"resource"`
		Name     string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

var webhookKinds = map[string]string{
	"mutatingwebhookconfigurations":   "MutatingWebhookConfiguration",
	"validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
}

// Writes lists, in the order the server answered them, the writes to
// webhook configurations since it started.
func (s *Server) Writes() ([]Write, error) {
	b, err := os.ReadFile(s.auditLog())
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	var out []Write
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", n, err)
		}
		if e.Stage != "ResponseComplete" || e.ObjectRef == nil || e.ResponseStatus == nil {
			continue
		}
		w := Write{User: e.User.Username, Verb: e.Verb, Kind: webhookKinds[e.ObjectRef.Resource], Name: e.ObjectRef.Name, Code: e.ResponseStatus.Code}
		if u, err := url.ParseRequestURI(e.RequestURI); err == nil {
			w.DryRun = slices.Contains(u.Query()["dryRun"], "All")
		}
		out = append(out, w)
	}
	return out, sc.Err()
}

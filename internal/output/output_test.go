package output

import (
	"bytes"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func TestResults(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Results(nil)); err != nil || b.String() != "[]\n" {
		t.Errorf("no results: %q %v", b.String(), err)
	}
	b.Reset()
	rs := framework.Results{
		{Message: "plain"},
		{
			Severity:    framework.Warning,
			Message:     "a <b> & c",
			File:        &framework.File{Path: "1-30/generated/service/istiod-1-30.yaml", Index: 2},
			ResourceRef: &yaml.ResourceIdentifier{TypeMeta: yaml.TypeMeta{APIVersion: "v1", Kind: "Service"}, NameMeta: yaml.NameMeta{Name: "istiod-1-30", Namespace: "istio-system"}},
			Field:       &framework.Field{Path: "metadata.labels", CurrentValue: "a", ProposedValue: "b"},
			Tags:        map[string]string{"dropped-from": "1-30"},
		},
	}
	if err := Write(&b, Results(rs)); err != nil {
		t.Fatal(err)
	}
	const want = `[
  {
    "severity": "info",
    "message": "plain"
  },
  {
    "severity": "warning",
    "message": "a <b> & c",
    "file": "1-30/generated/service/istiod-1-30.yaml",
    "object": {
      "apiVersion": "v1",
      "kind": "Service",
      "namespace": "istio-system",
      "name": "istiod-1-30"
    },
    "field": {
      "path": "metadata.labels",
      "currentValue": "a",
      "proposedValue": "b"
    },
    "tags": {
      "dropped-from": "1-30"
    }
  }
]
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCheck(t *testing.T) {
	if err := Check("json"); err != nil {
		t.Error(err)
	}
	if err := Check("yaml"); err == nil || err.Error() != `--output: "yaml" must be one of text, json` {
		t.Errorf("yaml: %v", err)
	}
	if err := Check("markdown", Text, "markdown", JSON); err != nil {
		t.Error(err)
	}
}

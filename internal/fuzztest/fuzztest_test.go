package fuzztest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/fuzztest"
)

type value struct {
	Name string `json:"name"`
}

func loadName(n *yaml.RNode) (*value, error) {
	name := n.GetName()
	if name == "" {
		if f := n.Field("name"); f != nil {
			name = yaml.GetValue(f.Value)
		}
	}
	if name == "" {
		return nil, errors.New("name must be set")
	}
	return &value{Name: name}, nil
}

// TestCheckLoader: a sound loader passes; each way a loader can be wrong
// is told.
func TestCheckLoader(t *testing.T) {
	named := yaml.MustParse("metadata:\n  name: a\n")
	ok := func(*value) error { return nil }
	calls := 0
	for _, c := range []struct {
		name     string
		load     func(*yaml.RNode) (*value, error)
		validate func(*value) error
		wrong    string
	}{
		{"sound", loadName, ok, ""},
		{"two errors", func(*yaml.RNode) (*value, error) { calls++; return nil, fmt.Errorf("error %d", calls) }, ok, "two errors"},
		{"a value and an error", func(*yaml.RNode) (*value, error) { return &value{}, errors.New("no") }, ok, "a value and an error"},
		{"neither", func(*yaml.RNode) (*value, error) { return nil, nil }, ok, "neither"},
		{"no validation", loadName, func(*value) error { return errors.New("bad") }, "does not validate again"},
		{"another value", func(n *yaml.RNode) (*value, error) {
			v, err := loadName(n)
			if err == nil {
				v.Name += "x"
			}
			return v, err
		}, ok, "reloads as another"},
	} {
		_, _, wrong := fuzztest.CheckLoader(named, c.load, c.validate)
		if (wrong == nil) != (c.wrong == "") || (wrong != nil && !strings.Contains(wrong.Error(), c.wrong)) {
			t.Errorf("%s: got %v, want %q", c.name, wrong, c.wrong)
		}
	}
	if v, err, wrong := fuzztest.CheckLoader(yaml.MustParse("kind: X\n"), loadName, ok); v != nil || err == nil || wrong != nil {
		t.Errorf("a refused document: got %v, %v, %v", v, err, wrong)
	}
}

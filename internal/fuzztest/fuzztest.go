// Package fuzztest holds what the fuzz tests share: running one input
// under a deadline, so that a hang fails the input instead of stalling
// the fuzzer, and a panic fails it with its stack.
package fuzztest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/disk"
)

// Limit is how long one input may take. Far above any input's real time,
// even on a loaded machine: it is there to catch hangs, not slowness.
const Limit = 10 * time.Second

// Run runs check under a deadline and fails t with its error, its panic
// (and stack) or the deadline. check runs on another goroutine, so it
// reports through its error, never through t. On a deadline, check's
// goroutine is left behind: unblock, when not nil, is called to let it go
// (it may close what check waits on).
func Run(t testing.TB, limit time.Duration, unblock func(), check func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- check()
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		if unblock != nil {
			unblock()
		}
		t.Fatalf("no answer in %s: a hang", limit)
	}
}

// Documents parses b as a YAML stream and returns its first documents
// (at most max), each as it is, whatever its shape: what a function
// config given on stdin may be. The stream ends at the first document
// that is not YAML.
func Documents(b []byte, max int) []*yaml.RNode {
	var out []*yaml.RNode
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for len(out) < max {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			break
		}
		node := &n
		if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
			node = node.Content[0]
		}
		out = append(out, yaml.NewRNode(node))
	}
	return out
}

// Configs calls check with each of b's first max documents as they are
// (a function config on stdin may be anything), then with each object of
// b as read from file, a file of a tree: the reader checks shapes first,
// and its own errors (not YAML, not a mapping) are not check's.
func Configs(b []byte, file string, max int, check func(*yaml.RNode) error) error {
	for _, n := range Documents(b, max) {
		if err := check(n); err != nil {
			return err
		}
	}
	var failed error
	_ = disk.Decode(bytes.NewReader(b), file, func(n *yaml.RNode) error {
		failed = check(n)
		return failed
	})
	return failed
}

// CheckLoader holds a config loader to what every loader must do with any
// document n: loading twice gives the same error; an error comes without
// a value and success with one; a loaded value validates again and
// reloads from its JSON as the same value (compared by JSON: an empty list
// and none are one value). It returns the loaded value and load's error,
// for the caller's own checks, and what the loader did wrong.
func CheckLoader[T any](n *yaml.RNode, load func(*yaml.RNode) (*T, error), validate func(*T) error) (v *T, loadErr, wrong error) {
	v, loadErr = load(n.Copy())
	if _, again := load(n.Copy()); fmt.Sprint(loadErr) != fmt.Sprint(again) {
		return nil, loadErr, fmt.Errorf("Load twice gives two errors:\n%v\n%v", loadErr, again)
	}
	switch {
	case loadErr != nil && v != nil:
		return nil, loadErr, fmt.Errorf("Load returned a value and an error: %v", loadErr)
	case loadErr != nil:
		return nil, loadErr, nil
	case v == nil:
		return nil, nil, fmt.Errorf("Load returned neither a value nor an error")
	}
	if err := validate(v); err != nil {
		return v, nil, fmt.Errorf("a loaded value does not validate again: %v", err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return v, nil, fmt.Errorf("a loaded value does not marshal to JSON: %v", err)
	}
	node, err := yaml.ConvertJSONToYamlNode(string(data))
	if err != nil {
		return v, nil, fmt.Errorf("JSON %s: %v", data, err)
	}
	reloaded, err := load(node)
	if err != nil {
		return v, nil, fmt.Errorf("a loaded value does not reload from its JSON %s: %v", data, err)
	}
	if back, err := json.Marshal(reloaded); err != nil || !bytes.Equal(back, data) {
		return v, nil, fmt.Errorf("a value reloads as another from its JSON %s: %s (%v)", data, back, err)
	}
	return v, nil, nil
}

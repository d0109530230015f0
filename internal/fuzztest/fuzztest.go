// Package fuzztest holds what the fuzz tests share: running one input
// under a deadline, so that a hang fails the input instead of stalling
// the fuzzer, and a panic fails it with its stack.
package fuzztest

import (
	"bytes"
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

package cli

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/krm"
)

// reportedError is the error of a run whose results hold errors: they are
// in the results already.
type reportedError struct{ msgs []string }

func (e *reportedError) Error() string {
	return "the function reported errors:\n" + strings.Join(e.msgs, "\n")
}

// runFunction is the KRM function: a ResourceList on stdin, one on stdout.
// On error the ResourceList written holds the results, an error result
// among them, and no items, as the KRM functions spec asks: items half
// processed must never pass for the function's output.
func runFunction(p framework.ResourceListProcessor, in io.Reader, out, stderr io.Writer) error {
	prepareHeap()
	rw := &kio.ByteReadWriter{Reader: in, Writer: out, KeepReaderAnnotations: true}
	items, err := rw.Read()
	if err != nil {
		return unreadable(out, fmt.Errorf("read the ResourceList on stdin: %w", err))
	}
	rl := &framework.ResourceList{Items: items, FunctionConfig: rw.FunctionConfig}
	annotations, err := kio.PreprocessResourcesForInternalAnnotationMigration(rl.Items)
	if err != nil {
		return unreadable(out, fmt.Errorf("read the ResourceList on stdin: %w", err))
	}
	runErr := process(p, rl, stderr)
	if runErr == nil && rl.Results.ExitCode() != 0 {
		reported := &reportedError{}
		for _, r := range rl.Results {
			if r.Severity == framework.Error {
				reported.msgs = append(reported.msgs, r.String())
			}
		}
		runErr = reported
	}
	if runErr != nil {
		// An error said by the results already (each mistake of a config,
		// with its field) is not said again.
		if _, ok := runErr.(*reportedError); !ok && rl.Results.ExitCode() == 0 {
			rl.Results = append(rl.Results, &framework.Result{Severity: framework.Error, Message: runErr.Error()})
		}
		rl.Results = krm.Unwritten(rl.Results)
		rl.Items = nil
	} else if err := kio.ReconcileInternalAnnotations(rl.Items, annotations); err != nil {
		return &internalError{err}
	}
	if len(rl.Results) > 0 {
		results, err := resultsNode(rl.Results)
		if err != nil {
			return &internalError{err}
		}
		rw.Results = results
	}
	if err := rw.Write(rl.Items); err != nil {
		return fmt.Errorf("write the ResourceList on stdout: %w", err)
	}
	return runErr
}

// unreadable writes a ResourceList holding err as its one result, and no
// items, for an input that is no ResourceList: the orchestrator shows
// results, not only stderr. It returns err.
func unreadable(out io.Writer, err error) error {
	results, rerr := resultsNode(framework.Results{{Severity: framework.Error, Message: err.Error()}})
	if rerr != nil {
		return &internalError{rerr}
	}
	w := &kio.ByteWriter{Writer: out, WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion, Results: results}
	if werr := w.Write(nil); werr != nil {
		return fmt.Errorf("%w; and write the ResourceList on stdout: %v", err, werr)
	}
	return err
}

// process runs p, turning a panic into an internal error so that the
// ResourceList written still says what happened.
func process(p framework.ResourceListProcessor, rl *framework.ResourceList, stderr io.Writer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			reportPanic(stderr, v, debug.Stack())
			err = &internalError{fmt.Errorf("%v", v)}
		}
	}()
	return p.Process(rl)
}

func resultsNode(rs framework.Results) (*yaml.RNode, error) {
	b, err := yaml.Marshal(rs)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	n, err := yaml.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return n, nil
}

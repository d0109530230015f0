// Package krm holds the ResourceList plumbing shared by every function
// config of ours: choosing the processor by the config's kind, finding the
// configs in a tree, and reading and writing a directory the way
// `kustomize fn run` does.
package krm

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
)

// Processors maps the kind of a function config of ours to what runs it.
type Processors map[string]framework.ResourceListProcessor

// IsConfig reports whether node is a function config this binary runs.
func (ps Processors) IsConfig(node *yaml.RNode) bool {
	if node == nil || node.GetApiVersion() != api.APIVersion {
		return false
	}
	_, ok := ps[node.GetKind()]
	return ok
}

// Process runs the processor of the function config's kind. Without a
// config of ours (none, or the empty ConfigMap `kustomize fn run --exec-path`
// passes), it runs every config of ours found among the items, in path order.
func (ps Processors) Process(rl *framework.ResourceList) error {
	if ps.IsConfig(rl.FunctionConfig) {
		return ps[rl.FunctionConfig.GetKind()].Process(rl)
	}
	if rl.FunctionConfig != nil && !isEmptyConfigMap(rl.FunctionConfig) {
		return fmt.Errorf("functionConfig %s %q: kind must be one of %q with apiVersion %q",
			rl.FunctionConfig.GetKind(), rl.FunctionConfig.GetName(), ps.kinds(), api.APIVersion)
	}
	found := ps.Configs(rl.Items)
	if len(found) == 0 {
		return fmt.Errorf("no function config: the input must hold an object of kind %q with apiVersion %q, or one must be given as functionConfig",
			ps.kinds(), api.APIVersion)
	}
	for _, cfg := range found {
		rl.FunctionConfig = cfg
		if err := ps[cfg.GetKind()].Process(rl); err != nil {
			return err
		}
	}
	return nil
}

func (ps Processors) kinds() []string {
	return config.SortedKeys(ps)
}

// Configs returns the function configs of ours among items, by path.
func (ps Processors) Configs(items []*yaml.RNode) []*yaml.RNode {
	return ConfigsOf(items, ps.kinds()...)
}

// ConfigsOf returns the objects of our API group among items whose kind is
// one of kinds, by path.
func ConfigsOf(items []*yaml.RNode, kinds ...string) []*yaml.RNode {
	var found []*yaml.RNode
	for _, it := range items {
		if it.GetApiVersion() == api.APIVersion && slices.Contains(kinds, it.GetKind()) {
			found = append(found, it)
		}
	}
	slices.SortStableFunc(found, func(a, b *yaml.RNode) int { return strings.Compare(Path(a), Path(b)) })
	return found
}

func isEmptyConfigMap(n *yaml.RNode) bool {
	if n.GetKind() != "ConfigMap" {
		return false
	}
	data := n.GetDataMap()
	return len(data) == 0
}

// Path is the file an item was read from or is written to, relative to the
// run's root, in slash form.
func Path(n *yaml.RNode) string {
	p, _, _ := kioutil.GetFileAnnotations(n)
	return path.Clean(strings.ReplaceAll(p, `\`, "/"))
}

// SetPath places an item alone in file p (index 0).
func SetPath(n *yaml.RNode, p string) error {
	return SetPathIndex(n, p, 0)
}

// SetPathIndex places an item in file p at document index i. Both the
// current and the legacy annotations are set, as kustomize and kpt read
// either.
func SetPathIndex(n *yaml.RNode, p string, i int) error {
	idx := fmt.Sprint(i)
	for _, kv := range [][2]string{
		{kioutil.PathAnnotation, p},
		{kioutil.LegacyPathAnnotation, p},
		{kioutil.IndexAnnotation, idx},
		{kioutil.LegacyIndexAnnotation, idx},
	} {
		k, v := kv[0], kv[1]
		if err := n.PipeE(yaml.SetAnnotation(k, v)); err != nil {
			return fmt.Errorf("%s %q: set %s: %w", n.GetKind(), n.GetName(), k, err)
		}
	}
	return nil
}

// IsLocalConfig reports whether an item is marked never to be deployed.
func IsLocalConfig(n *yaml.RNode) bool {
	v, ok := n.GetAnnotations()[api.LocalConfigAnnotation]
	return ok && v != "false"
}

// Describe names an object for messages: Kind namespace/name.
func Describe(n *yaml.RNode) string {
	if ns := n.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", n.GetKind(), ns, n.GetName())
	}
	return fmt.Sprintf("%s %s", n.GetKind(), n.GetName())
}

// SetString sets the string at path in n, creating the mappings on the
// way. An existing scalar keeps its style and comments; a new one is plain,
// as istioctl writes it, unless YAML would read it back as something other
// than a string ("123", "true", or "yes" under the YAML 1.1 the API server
// reads), then it is double-quoted.
func SetString(n *yaml.RNode, value string, path ...string) error {
	at := strings.Join(path, ".")
	cur, err := n.Pipe(yaml.Lookup(path...))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	if cur != nil && cur.YNode().Kind == yaml.ScalarNode && !cur.IsTaggedNull() {
		cur.YNode().Value = value
		cur.YNode().Tag = yaml.NodeTagString
		quoteIfAmbiguous(cur.YNode())
		return nil
	}
	parent, err := n.Pipe(yaml.LookupCreate(yaml.MappingNode, path[:len(path)-1]...))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	if err := parent.PipeE(yaml.SetField(path[len(path)-1], yaml.NewRNode(StringNode(value)))); err != nil {
		return fmt.Errorf("%s: %s: %w", Describe(n), at, err)
	}
	return nil
}

// StringNode is a new string scalar, laid out as SetString lays it out.
func StringNode(value string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: value}
	quoteIfAmbiguous(n)
	return n
}

func quoteIfAmbiguous(n *yaml.Node) {
	if n.Style != 0 {
		return
	}
	var back any
	if yaml.IsValueNonString(n.Value) || yaml.Unmarshal([]byte(n.Value), &back) != nil || back != n.Value {
		n.Style = yaml.DoubleQuotedStyle
	}
}

// SetLabel sets a label (see SetString).
func SetLabel(n *yaml.RNode, key, value string) error {
	return SetString(n, value, yaml.MetadataField, yaml.LabelsField, key)
}

// SetAnnotation sets an annotation (see SetString). A null annotations
// field (istioctl renders `annotations: null` on gateway Services) is
// dropped first: it cannot take a key.
func SetAnnotation(n *yaml.RNode, key, value string) error {
	if err := yaml.ClearEmptyAnnotations(n); err != nil {
		return fmt.Errorf("%s: %w", Describe(n), err)
	}
	return SetString(n, value, yaml.MetadataField, yaml.AnnotationsField, key)
}

// Index is an item's document index in its file.
func Index(n *yaml.RNode) int {
	_, i, _ := kioutil.GetFileAnnotations(n)
	v, _ := strconv.Atoi(i)
	return v
}

// RunDir reads root as `kustomize fn run` does, runs the function configs
// of ours found in it (in path order) and writes root back all or nothing:
// files whose objects are no longer emitted are deleted, files a run
// passed through keep their bytes, the others are laid out as kustomize
// and kpt lay them out. A processor that runs over files (our pipeline)
// reads only the files it needs; the others get every object. A commit an
// interrupted run left unfinished is finished first.
func (ps Processors) RunDir(root string) (framework.Results, error) {
	var results framework.Results
	recovered, err := disk.Recover(root)
	if err != nil {
		return nil, err
	}
	if recovered {
		results = append(results, &framework.Result{Severity: framework.Warning,
			Message: fmt.Sprintf("%s: finished writing the changes of an earlier run that was interrupted", root)})
	}
	t, err := disk.Read(root)
	if err != nil {
		return results, err
	}
	in := fileset.FromTree(t)
	cfgs, err := ps.findConfigs(in)
	if err != nil {
		return results, err
	}
	if len(cfgs) == 0 {
		return results, fmt.Errorf("%s: no function config: the tree must hold an object of kind %q with apiVersion %q",
			root, ps.kinds(), api.APIVersion)
	}
	cur := in
	for _, cfg := range cfgs {
		var res framework.Results
		if fp, ok := ps[cfg.GetKind()].(fileset.Processor); ok {
			cur, res, err = fp.ProcessFiles(cur, cfg)
		} else {
			cur, res, err = fileset.ProcessItems(ps[cfg.GetKind()], cur, cfg, nil)
		}
		results = append(results, res...)
		if err != nil {
			return results, err
		}
	}
	if results.ExitCode() != 0 {
		return results, fmt.Errorf("the run reported errors; nothing was written")
	}
	writes, deletes, err := fileset.Changes(in, cur)
	if err != nil {
		return results, err
	}
	return results, t.Commit(writes, deletes)
}

// findConfigs finds the function configs of ours among files without
// parsing them all: only a file that names one of our kinds is parsed.
func (ps Processors) findConfigs(in fileset.Set) ([]*yaml.RNode, error) {
	var found []*yaml.RNode
	for _, f := range in {
		ours, err := f.Mentions(ps.kinds()...)
		if err != nil {
			return nil, err
		}
		if !ours {
			continue
		}
		objs, err := f.Objects()
		if err != nil {
			return nil, err
		}
		found = append(found, ps.Configs(objs)...)
	}
	return found, nil
}

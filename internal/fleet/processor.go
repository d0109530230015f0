package fleet

import (
	"path"
	"path/filepath"
	"slices"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/object"
	"github.com/istio-gitops/istio-gitops/internal/pipeline"
)

// Processor runs IstioGitOps trees read from a folder on disk (istio-gitops
// run): before the pipeline, it reads what the config names beside the
// tree (spec.namespaces.from, spec.patchesFrom); after it, it judges the
// step against the order of spec.promotion. Under kustomize and kpt the
// function sees only its input, so these are istio-gitops run's.
type Processor struct {
	// Root is the folder the run reads, on disk, as given.
	Root    string
	Options pipeline.Options
	// Clock is the time the order is judged at (time.Now when nil).
	Clock func() time.Time
}

// WithHidden is the processor with Options.Hidden set (see
// pipeline.Processor.WithHidden).
func (p Processor) WithHidden(hidden func(path string, dir bool) bool) framework.ResourceListProcessor {
	p.Options.Hidden = hidden
	return p
}

// Process implements framework.ResourceListProcessor: over a ResourceList
// only the pipeline runs.
func (p Processor) Process(rl *framework.ResourceList) error {
	return pipeline.Processor{Options: p.Options}.Process(rl)
}

// ProcessFiles implements fileset.Processor.
func (p Processor) ProcessFiles(in fileset.Set, cfgNode *yaml.RNode) (fileset.Set, framework.Results, error) {
	cfg, res, err := config.LoadResults(cfgNode)
	if err != nil {
		return nil, res, err
	}
	root := krm.RootOf(object.Path(cfgNode))
	dir := filepath.Join(p.Root, filepath.FromSlash(root))
	name := filepath.ToSlash(dir)
	file := path.Join(name, path.Base(object.Path(cfgNode)))
	opts := p.Options
	opts.OrderChecked = true
	ns, shared, err := besides(dir, name, file, cfg)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Spec.Namespaces.From) > 0 {
		opts.Namespaces = append(slices.Clone(opts.Namespaces), ns...)
		opts.NamespacesFrom = true
	}
	if len(cfg.Spec.PatchesFrom) > 0 {
		opts.SharedPatches = shared
	}
	out, res, err := pipeline.Run(cfg, in, opts)
	if err != nil || cfg.Spec.Promotion == nil {
		return out, res, err
	}
	now := time.Now
	if p.Clock != nil {
		now = p.Clock
	}
	v, err := Judge(Step{Dir: dir, Name: name, File: file, Config: cfg,
		Now: State(cfg, root, out), Recorded: Recorded(cfg, root, in), Clock: now()})
	if err != nil {
		return nil, res, err
	}
	more, err := Results(v, file)
	res = append(res, more...)
	if err != nil {
		return nil, res, err
	}
	return out, res, nil
}

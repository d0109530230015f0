package pipeline

import (
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/istio-gitops/istio-gitops/internal/api"
	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/envoyfilter"
	"github.com/istio-gitops/istio-gitops/internal/flux"
	"github.com/istio-gitops/istio-gitops/internal/gateway"
	"github.com/istio-gitops/istio-gitops/internal/istioctl"
	"github.com/istio-gitops/istio-gitops/internal/krm"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/pointer"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// regenerate lays out a revision's fresh istioctl output, replacing its
// generated files and, for the newest revision, the common ones.
func (r *run) regenerate(rev config.Revision, newest bool) error {
	src := r.abs(rev.Source)
	objs := r.sources[rev.Name]
	if err := istioctl.Check(src, objs); err != nil {
		return err
	}
	version := rev.Version
	if version == "" {
		version, _ = istioctl.Version(objs)
	}
	ef := &envoyfilter.Filter{Version: version}
	objs, err := ef.Filter(objs)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	for _, d := range ef.Dropped {
		r.drop(d.Object, rev.Name, src, "dropped: "+d.Reason, framework.Info)
	}
	objs = r.dropPointers(rev.Name, src, objs)
	if r.cfg.PerRevisionGateways() {
		if err := gateway.PerRevision(objs, rev.Name); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}

	var revObjs, commonObjs []*yaml.RNode
	for _, o := range objs {
		switch {
		case istioctl.HasRevision(o.GetName(), rev.Name):
			revObjs = append(revObjs, o)
		case newest:
			commonObjs = append(commonObjs, o)
		default:
			r.drop(o, rev.Name, src, fmt.Sprintf("not written: common/ is taken from the newest revision %q", r.cfg.Newest()), framework.Info)
		}
	}
	for _, o := range revObjs {
		if _, ok := o.GetLabels()[api.RevisionLabel]; ok {
			continue
		}
		if err := krm.SetLabel(o, api.RevisionLabel, rev.Name); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}
	if err := r.guard(revObjs); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}

	genDir := path.Join(rev.Name, layout.Generated)
	if err := r.place(revObjs, genDir); err != nil {
		return err
	}
	st := state.New(rev.Name)
	st.Spec.Version = version
	r.records[rev.Name] = st
	revObjs, err = r.applyPatches(rev, revObjs)
	if err != nil {
		return err
	}
	if err := r.record(rev.Name, revObjs); err != nil {
		return err
	}
	if err := r.reportReplaced(rev.Name); err != nil {
		return err
	}
	r.objs[rev.Name] = revObjs
	r.out = append(r.out, revObjs...)
	r.summary(genDir, src, len(revObjs))

	if newest {
		for _, o := range commonObjs {
			// Removing a folder must never delete every Istio custom
			// resource in the cluster with the CRDs.
			if err := flux.DisablePrune(o); err != nil {
				return fmt.Errorf("%s: %s: %w", src, krm.Describe(o), err)
			}
		}
		if err := r.place(commonObjs, layout.Common); err != nil {
			return err
		}
		r.out = append(r.out, commonObjs...)
		r.summary(layout.Common, src, len(commonObjs))
	}
	r.regenerated[rev.Name] = true
	return nil
}

// dropPointers leaves out the objects the run renders itself from the
// config (istiod-default-validator, revision tags): a user who set
// values.defaultRevision or values.revisionTags gets spec's version.
func (r *run) dropPointers(rev, src string, objs []*yaml.RNode) []*yaml.RNode {
	kept := objs[:0:0]
	for _, o := range objs {
		if !pointer.IsPointer(o) {
			kept = append(kept, o)
			continue
		}
		field := "spec.activeRevision"
		if strings.HasPrefix(o.GetName(), pointer.TagWebhookPrefix) || strings.HasPrefix(o.GetName(), pointer.TagServicePrefix) {
			field = "spec.tags"
		}
		r.drop(o, rev, src, "dropped: gives way to the object rendered from "+field, framework.Warning)
	}
	return kept
}

// guard applies the webhook drift guards, when on.
func (r *run) guard(objs []*yaml.RNode) error {
	if !r.cfg.DriftGuards() {
		return nil
	}
	for _, o := range objs {
		if err := pointer.DriftGuards(o); err != nil {
			return fmt.Errorf("%s: %w", krm.Describe(o), err)
		}
	}
	return nil
}

// place gives each object its file under folder.
func (r *run) place(objs []*yaml.RNode, folder string) error {
	for _, o := range objs {
		if err := krm.SetPath(o, r.abs(layout.ObjectFile(folder, o, r.cfg.Spec.Namespace))); err != nil {
			return err
		}
		// Files the function owns are always laid out alike, whichever
		// orchestrator runs it and whatever the source's indentation.
		if _, err := o.Pipe(yaml.ClearAnnotation(kioutil.SeqIndentAnnotation)); err != nil {
			return fmt.Errorf("%s: %w", krm.Describe(o), err)
		}
	}
	return nil
}

// record sets the revision's file digests to its objects' files.
func (r *run) record(rev string, objs []*yaml.RNode) error {
	sums, err := digestAll(objs)
	if err != nil {
		return err
	}
	st := r.records[rev]
	st.Spec.Files = map[string]string{}
	for i, o := range objs {
		p, _ := r.rel(o)
		st.Spec.Files[strings.TrimPrefix(p, rev+"/")] = sums[i]
	}
	return nil
}

// emitRecord writes the revision's record.
func (r *run) emitRecord(rev string) error {
	st := r.records[rev]
	if st == nil {
		return nil
	}
	if old := r.recorded[rev]; old != nil && !r.regenerated[rev] && old.Equal(st) {
		// Unchanged records pass through untouched.
		r.out = append(r.out, r.states[rev])
		return nil
	}
	n, err := st.Node()
	if err != nil {
		return err
	}
	if err := krm.SetPath(n, r.abs(path.Join(rev, layout.Generated, layout.StateFile))); err != nil {
		return err
	}
	r.out = append(r.out, n)
	return nil
}

// digestAll digests the file of each object, on every core.
func digestAll(objs []*yaml.RNode) ([]string, error) {
	sums := make([]string, len(objs))
	err := disk.Parallel(len(objs), func(i int) error {
		b, err := layout.FileBytes(objs[i])
		if err != nil {
			return fmt.Errorf("%s: %w", krm.Path(objs[i]), err)
		}
		sums[i] = state.Digest(b)
		return nil
	})
	return sums, err
}

// reportReplaced names the generated files a regeneration replaced that
// had been edited by hand since the last run, and those it removed.
func (r *run) reportReplaced(rev string) error {
	var recorded map[string]string
	if old := r.recorded[rev]; old != nil {
		recorded = old.Spec.Files
	}
	written := r.records[rev].Spec.Files
	old := r.generated[rev]
	sums, err := digestAll(old)
	if err != nil {
		return err
	}
	for i, o := range old {
		p, _ := r.rel(o)
		key := strings.TrimPrefix(p, rev+"/")
		want, known := recorded[key]
		edited := known && want != sums[i]
		_, kept := written[key]
		switch {
		case edited && kept:
			r.warn(o, r.abs(p), "replaced a file edited by hand since the last run; keep changes as GitPatches in "+rev+"/patches/")
		case edited:
			r.warn(o, r.abs(p), "removed a file edited by hand since the last run: the new istioctl output no longer has it")
		case !kept:
			r.info(o, r.abs(p), "removed: the new istioctl output no longer has it")
		}
	}
	return nil
}

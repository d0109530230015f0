package fleet_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/disk"
	"github.com/istio-gitops/istio-gitops/internal/fileset"
	"github.com/istio-gitops/istio-gitops/internal/fleet"
	"github.com/istio-gitops/istio-gitops/internal/promotion"
)

// TestRecorded: outside Git, where a tree's pointers stood when it was
// last written is read from the objects rendered from them (points-at):
// for every golden tree, what the config says now.
func TestRecorded(t *testing.T) {
	for _, name := range []string{"bootstrap/want", "add-1-31/want", "demo/want", "gateways/want", "gateways-custom/want",
		"ambient/3-move-istio-cni", "ambient/5-promote", "ambient/7-move-ztunnel-again", "cutover/4-move-api-and-beta",
		"cutover/6-switch-live", "argocd/4-switch-live"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "golden", name)
			tr, err := disk.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			files := fileset.FromTree(tr)
			cfgFile := slices.IndexFunc(files, func(f *fileset.File) bool { return f.Path == "istio-gitops.yaml" })
			if cfgFile < 0 {
				t.Fatal("no istio-gitops.yaml")
			}
			objs, err := files[cfgFile].Objects()
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			rec := fleet.Recorded(cfg, "", files)
			if rec == nil {
				t.Fatal("Recorded: nil, want the tree's pointers")
			}
			want := promotion.Pointers(cfg)
			if !slices.Equal(rec.Pointers, want) {
				t.Errorf("recorded pointers %v, want the config's %v", rec.Pointers, want)
			}
			// The same tree in a fleet's folder, read from its root: the
			// same record.
			var nested fileset.Set
			for _, f := range files {
				nested = append(nested, fileset.Named("clusters/prod/"+f.Path, f))
			}
			if got := fleet.Recorded(cfg, "clusters/prod", nested); !reflect.DeepEqual(got, rec) {
				t.Errorf("recorded from its root clusters/prod: %+v, want %+v", got, rec)
			}
		})
	}
}

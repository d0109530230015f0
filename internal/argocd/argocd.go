// Package argocd renders the Argo CD Applications that deploy a mesh tree:
// an app-of-apps for the tree's root, and under it one Application for
// common/ and one per revision folder, in sync waves so that common/ (the
// CRDs) is in place before any revision. Retiring a revision removes its
// Application, whose finalizer deletes exactly the revision's objects.
//
// It also marks CustomResourceDefinitions never to be pruned or deleted by
// Argo CD: deleting a CRD deletes every custom resource of its kind in the
// cluster.
package argocd

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/revision"
)

const (
	// APIVersion is the Argo CD Application API written.
	APIVersion = "argoproj.io/v1alpha1"
	// Kind is the kind of the objects written.
	Kind = "Application"
	// Folder is the tree's folder holding them.
	Folder = layout.ArgoCD
	// CommonFolder is the tree's folder of shared objects.
	CommonFolder = layout.Common
	// AppOfAppsFile is the app-of-apps' file in Folder. It is applied
	// once (or listed by the cluster's own bootstrap Application), not
	// listed in Folder's kustomization: it deploys the tree's root, which
	// lists Folder.
	AppOfAppsFile = "app-of-apps.yaml"

	// SyncWaveAnnotation orders the objects of one sync.
	SyncWaveAnnotation = "argocd.argoproj.io/sync-wave"
	// SyncOptionsAnnotation holds a resource's own sync options.
	SyncOptionsAnnotation = "argocd.argoproj.io/sync-options"
	// CRDSyncOptions keeps Argo CD from pruning a CRD removed from Git and
	// from deleting it with its Application.
	CRDSyncOptions = "Prune=false,Delete=false"
	// ResourcesFinalizer makes deleting an Application delete what it
	// deployed (Argo CD's cascading deletion).
	ResourcesFinalizer = "resources-finalizer.argocd.argoproj.io"
	// ServerSideApply is the sync option of every Application written.
	ServerSideApply = "ServerSideApply=true"

	// CommonWave and RevisionWave are the sync waves of the Applications
	// within the app-of-apps' sync: the root's own files (the control-plane
	// Namespace) in wave 0, then common/, then the revisions.
	CommonWave   = 1
	RevisionWave = 2
)

// Name is the Application deploying folder (common or a revision) for the
// app-of-apps named app.
func Name(app, folder string) string { return app + "-" + folder }

// File is where the Application deploying folder is written, relative to
// the tree's root: argocd/common.yaml, argocd/<rev>.yaml.
func File(folder string) string { return path.Join(Folder, folder+".yaml") }

// application is the part of Argo CD's v1alpha1.Application written.
type application struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Spec       spec     `json:"spec"`
}

type metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Finalizers  []string          `json:"finalizers,omitempty"`
}

type spec struct {
	Project     string      `json:"project"`
	Source      source      `json:"source"`
	Destination destination `json:"destination"`
	SyncPolicy  syncPolicy  `json:"syncPolicy"`
}

type source struct {
	RepoURL        string `json:"repoURL"`
	TargetRevision string `json:"targetRevision"`
	Path           string `json:"path"`
}

type destination struct {
	Server    string `json:"server,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace"`
}

type syncPolicy struct {
	Automated   automated `json:"automated"`
	SyncOptions []string  `json:"syncOptions"`
}

type automated struct {
	Prune    bool `json:"prune"`
	SelfHeal bool `json:"selfHeal"`
}

// Applications renders the Argo CD Applications of a tree whose
// control-plane namespace is namespace: the app-of-apps (spec.argocd.name)
// for the tree's root, then <name>-common for common/ in sync wave
// CommonWave, then <name>-<rev> for each revision in the order given, in
// sync wave RevisionWave. Every one syncs automatically with pruning and
// self-heal, by server-side apply, into spec.argocd.destination; the
// children carry Argo CD's resources finalizer, so that removing one from
// Git deletes what it deployed (the CRDs excepted, see DisableDelete).
func Applications(a config.ArgoCD, namespace string, revisions []string) ([]*yaml.RNode, error) {
	base, err := layout.RepoPath("spec.argocd.path", "repository", `such as "clusters/prod/istio"`, a.Path)
	if err != nil {
		return nil, err
	}
	if namespace == "" {
		return nil, fmt.Errorf("spec.namespace: must be the control-plane namespace")
	}
	// Argo CD's label tracking writes the Application's name as a label
	// value.
	name := func(r string) string { return Name(a.Name, r) }
	if err := revision.CheckList(revisions, name, Kind, fmt.Sprintf("spec.argocd.name %q", a.Name)); err != nil {
		return nil, err
	}
	build := func(name, p, destNamespace string) *application {
		return &application{
			APIVersion: APIVersion,
			Kind:       Kind,
			Metadata:   metadata{Name: name, Namespace: a.Namespace},
			Spec: spec{
				Project: a.Project,
				Source:  source{RepoURL: a.RepoURL, TargetRevision: a.TargetRevision, Path: p},
				Destination: destination{
					Server: a.Destination.Server, Name: a.Destination.Name, Namespace: destNamespace,
				},
				SyncPolicy: syncPolicy{
					Automated:   automated{Prune: true, SelfHeal: true},
					SyncOptions: []string{ServerSideApply},
				},
			},
		}
	}
	child := func(folder string, wave int) *application {
		app := build(Name(a.Name, folder), path.Join(base, folder), namespace)
		app.Metadata.Annotations = map[string]string{SyncWaveAnnotation: strconv.Itoa(wave)}
		app.Metadata.Finalizers = []string{ResourcesFinalizer}
		return app
	}
	// The app-of-apps deploys Applications into Argo CD's namespace and the
	// root's files (which name their namespaces).
	apps := []*application{build(a.Name, base, a.Namespace), child(CommonFolder, CommonWave)}
	for _, r := range revisions {
		apps = append(apps, child(r, RevisionWave))
	}
	out := make([]*yaml.RNode, 0, len(apps))
	for _, app := range apps {
		b, err := k8syaml.Marshal(app)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", Kind, app.Metadata.Name, err)
		}
		n, err := yaml.Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", Kind, app.Metadata.Name, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// DisableDelete annotates a CustomResourceDefinition
// argocd.argoproj.io/sync-options: Prune=false,Delete=false, so neither
// removing it from Git nor deleting its Application ever deletes the CRD,
// and with it every Istio resource of its kind. Other kinds are left alone.
func DisableDelete(obj *yaml.RNode) error {
	if obj.GetKind() != "CustomResourceDefinition" || !strings.HasPrefix(obj.GetApiVersion(), "apiextensions.k8s.io/") {
		return nil
	}
	if err := obj.PipeE(
		yaml.LookupCreate(yaml.MappingNode, "metadata", "annotations"),
		yaml.SetField(SyncOptionsAnnotation, yaml.NewStringRNode(CRDSyncOptions)),
	); err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: metadata.annotations[%q]: %w", obj.GetName(), SyncOptionsAnnotation, err)
	}
	return nil
}

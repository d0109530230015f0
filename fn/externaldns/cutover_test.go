package externaldns

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/external-dns/endpoint"
	"sigs.k8s.io/external-dns/pkg/apis/externaldns"
	"sigs.k8s.io/external-dns/plan"
	"sigs.k8s.io/external-dns/provider/inmemory"
	"sigs.k8s.io/external-dns/registry/txt"
	"sigs.k8s.io/external-dns/source"
	"sigs.k8s.io/external-dns/source/wrappers"
	"sigs.k8s.io/yaml"
)

func TestDraft(t *testing.T) {
	_ = context.Background()
	_ = networkingv1.Ingress{}
	_ = fake.NewClientset()
	_ = endpoint.RecordTypeA
	_ = externaldns.NewConfig()
	_ = plan.Policies
	_ = inmemory.NewInMemoryProvider()
	_ = txt.New
	_ = source.NewSourceConfig
	_ = wrappers.Build
	_ = yaml.Unmarshal
}
